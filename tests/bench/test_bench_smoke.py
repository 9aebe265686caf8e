"""Smoke run of scripts/bench --quick --workers 2: it completes, prints its tables and writes valid
JSON. No timing is asserted (timings depend on the machine); only completeness and zero errors."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = {
    "nonstream_c1",
    "nonstream_c64",
    "stream20_c1",
    "stream20_c64",
    "anthropic_stream20_c64",
    "messages_stream20_c64",
    "responses_c64",
    "responses_stream20_c64",
    "embeddings_c64",
    "slow_streams",
}
WORKER_SCENARIOS = {"nonstream_c64", "stream20_c64"}
MEASURED = ("rps", "cpu_ms_per_req", "cpu_util", "rss_peak_mb", "load_cpu_util", "latency_ms")


def _complete(name: str, target: str, run: dict[str, Any]) -> None:
    assert run["completed"] > 0, (name, target, run)
    assert run["errors"] == 0, (name, target, run["error_kinds"])


def test_bench_quick_run_completes_every_scenario_and_two_workers_with_no_errors(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bench-results.json"
    done = subprocess.run(
        [str(ROOT / "scripts" / "bench"), "--quick", "--workers", "2", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "scenario" in done.stdout and "CPU ms/req" in done.stdout, done.stdout
    results = json.loads(out.read_text())
    assert results["meta"]["machine"]["cpu_model"]
    assert set(results["scenarios"]) == SCENARIOS
    for name, scenario in results["scenarios"].items():
        assert name in done.stdout
        _complete(name, "direct", scenario["direct"])
        _complete(name, "gateway", scenario["gateway"])
        for field in MEASURED:
            assert field in scenario["gateway"], (name, field)

    workers = results["workers"]
    assert workers["n"] == 2
    assert set(workers["scenarios"]) == WORKER_SCENARIOS
    for name, entry in workers["scenarios"].items():
        run = entry["gateway"]
        _complete(name, "2 workers", run)
        assert run["processes"] == 3, "a supervisor and two workers are measured"
        assert run["rps_vs_one_worker"] is not None
    assert "2 workers" in done.stdout

    ratios = {r["ratio"]: r for r in results["ratios"]}
    translated = "gateway CPU ms/stream, anthropic_stream20_c64 / stream20_c64"
    assert ratios[translated]["value"] is not None and "met" in ratios[translated]
    for name in WORKER_SCENARIOS:
        assert ratios[f"{name} req/s, 2 workers / 1 worker"]["value"] is not None
    assert translated in done.stdout

    assert results["gateway"]["idle_rss_mb"] > 0
    features = results["features"]
    assert features["request_log_rows_in_postgres"] > 0
    assert set(features["requests_by_endpoint"]) == {"chat", "embeddings", "responses", "messages"}
    assert features["usage_estimated"] == 0, "the gateway read the mock's usage on every API"
    assert float(features["budget_remaining_usd"]) > 0, "USD budgets were on"
    assert results["targets"], "the targets are evaluated"


def test_bench_cache_phase_measures_floor_off_miss_and_hit(tmp_path: Path) -> None:
    out = tmp_path / "bench-results.json"
    done = subprocess.run(
        [str(ROOT / "scripts" / "bench"), "--quick", "--scenarios", ",".join(WORKER_SCENARIOS),
         "--cache", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    cache = json.loads(out.read_text())["cache"]
    assert set(cache["scenarios"]) == WORKER_SCENARIOS
    for name, entry in cache["scenarios"].items():
        for run in ("floor", "off", "miss", "hit"):
            assert entry[run]["errors"] == 0 and entry[run]["rps"] > 0, (name, run, entry[run])
        assert entry["hit_vs_off"] is not None
    counts = cache["cache_requests"]
    assert counts["hit"] > 0 and counts["refresh"] > 0, counts  # the hits were hits
    assert "response cache" in done.stdout

"""Smoke run of scripts/bench --quick: it completes, prints its table and writes valid JSON.
No timing is asserted (timings depend on the machine); only completeness and zero errors."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = {"nonstream_c1", "nonstream_c64", "stream20_c1", "stream20_c64", "slow_streams"}


def test_bench_quick_run_completes_with_every_scenario_and_no_errors(tmp_path: Path) -> None:
    out = tmp_path / "bench-results.json"
    done = subprocess.run(
        [str(ROOT / "scripts" / "bench"), "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "scenario" in done.stdout and "CPU ms/req" in done.stdout, done.stdout
    results = json.loads(out.read_text())
    assert set(results["scenarios"]) == SCENARIOS
    for name, scenario in results["scenarios"].items():
        for target in ("direct", "gateway"):
            run = scenario[target]
            assert run["completed"] > 0, (name, target, run)
            assert run["errors"] == 0, (name, target, run["error_kinds"])
            assert name in done.stdout
    assert results["gateway"]["idle_rss_mb"] > 0
    assert results["features"]["request_log_rows_in_postgres"] > 0
    assert results["targets"], "the targets are evaluated"

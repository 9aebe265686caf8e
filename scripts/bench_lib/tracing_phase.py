"""`scripts/bench --tracing`: the throughput scenarios (ns64, st64) against a gateway with
tracing off and on (sample_ratio 1.0, every span exported to a local OTLP sink), one worker
pinned to CPU 0 as in the main run; CPU per request on / off is the figure. Off and on alternate
for `ROUNDS` rounds and each side's CPU and requests are pooled, so neither side gets the
machine's quiet or busy moments alone (two identical runs differ by up to 5% back to back).
"""

from __future__ import annotations

import re
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import yaml
from load import measure as measure_load
from load import run_load
from plan import THROUGHPUT
from proc import GATEWAY_CPU, LOAD_CPU, free_port, pin_prefix, wait_port
from stack import http, start_gateway

if TYPE_CHECKING:
    from run import Bench

HERE = Path(__file__).resolve().parent
CEILING = 1.15  # CPU per request with tracing on, as a multiple of off (issue 26)
ROUNDS = 3


def _config_with_tracing(config_path: Path, endpoint: str, out: Path) -> Path:
    config = yaml.safe_load(config_path.read_text())
    config["telemetry"] = {"otlp_endpoint": endpoint, "sample_ratio": 1.0}
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def _failures(base: str) -> float:
    _, _, body = http("GET", f"{base}/metrics", {})
    found = re.findall(rb"^gateway_trace_export_failures_total\{[^}]*\} ([0-9.e+]+)$", body, re.M)
    return sum(float(v) for v in found)


def _run(bench: Bench, config: Path, log: Path, label: str) -> dict[str, Any]:
    args, tmp = bench.args, bench.tmp
    plan = [sc for sc in bench.plan if sc.name in THROUGHPUT]
    load_pin = pin_prefix(LOAD_CPU)
    gw = start_gateway(bench.children, config, log, pin_prefix(GATEWAY_CPU))
    out: dict[str, Any] = {}
    try:
        bench.warm_up(gw, plan, load_pin)
        for sc in plan:
            print(f"running {sc.name} with tracing {label} ...", file=sys.stderr, flush=True)
            target = bench.gateway_target(gw, sc)
            bench.open_connections(target, sc, load_pin)
            out[sc.name] = measure_load(
                gw.pid, sc,
                partial(run_load, args, target, sc, sc.duration_s, args.requests, tmp, load_pin),
                None, bench.mock_pid, GATEWAY_CPU,
            )  # fmt: skip
        out["trace_export_failures"] = _failures(gw.base)
    finally:
        bench.children.stop(gw.proc)
    return out


def tracing_phase(bench: Bench, config_path: Path) -> dict[str, Any]:
    """Off and on, alternating: each scenario's req/s and CPU ms per request, and on / off."""
    port = free_port()
    sink = bench.children.start(
        [*pin_prefix(LOAD_CPU), sys.executable, str(HERE / "otlp_sink.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    wait_port(port, 20, sink)
    endpoint = f"http://127.0.0.1:{port}/v1/traces"
    traced = _config_with_tracing(config_path, endpoint, bench.tmp / "gateway-traced.yaml")
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    try:
        for _ in range(ROUNDS):
            runs["off"].append(_run(bench, config_path, bench.tmp / "gateway-untraced.log", "off"))
            runs["on"].append(_run(bench, traced, bench.tmp / "gateway-traced.log", "on"))
        _, _, stats = http("GET", f"http://127.0.0.1:{port}/stats", {})
    finally:
        bench.children.stop(sink)
    result: dict[str, Any] = {
        "sample_ratio": 1.0,
        "rounds": ROUNDS,
        "sink": orjson.loads(stats),
        "trace_export_failures": sum(r.pop("trace_export_failures") for r in runs["on"]),
        "ceiling": CEILING,
        "scenarios": {},
    }
    for r in runs["off"]:
        r.pop("trace_export_failures")
    for name in runs["off"][0]:
        off, on = _pooled(runs["off"], name), _pooled(runs["on"], name)
        ratio = on["cpu_ms_per_req"] / off["cpu_ms_per_req"]
        result["scenarios"][name] = {
            "off": off,
            "on": on,
            "cpu_per_req_on_vs_off": round(ratio, 3),
            "within_ceiling": ratio <= CEILING,
        }
    return result


def _pooled(runs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """One scenario over the rounds: CPU per request over every request, req/s on average, and
    each round's CPU per request."""
    rounds = [r[name] for r in runs]
    completed = sum(r["completed"] for r in rounds)
    return {
        "rps": sum(r["rps"] for r in rounds) / len(rounds),
        "cpu_ms_per_req": round(sum(r["cpu_s"] for r in rounds) * 1000 / completed, 3),
        "user_ms_per_req": round(sum(r["cpu_user_s"] for r in rounds) * 1000 / completed, 3),
        "sys_ms_per_req": round(sum(r["cpu_sys_s"] for r in rounds) * 1000 / completed, 3),
        "rounds_cpu_ms_per_req": [r["cpu_ms_per_req"] for r in rounds],
    }


def text(result: dict[str, Any]) -> str:
    lines = [
        "",
        f"tracing (sample_ratio {result['sample_ratio']}, OTLP/HTTP to a local sink, off and on "
        f"alternating, {result['rounds']} rounds pooled): CPU per request on / off, ceiling "
        f"{result['ceiling']}x",
    ]
    for name, r in result["scenarios"].items():
        lines.append(
            f"  {name:<16} off {r['off']['rps']:>8.0f} req/s {r['off']['cpu_ms_per_req']:.3f} ms"
            f" | on {r['on']['rps']:>8.0f} req/s {r['on']['cpu_ms_per_req']:.3f} ms"
            f" | {r['cpu_per_req_on_vs_off']:.3f}x {'ok' if r['within_ceiling'] else 'OVER'}"
        )
        off_on = (r["off"]["rounds_cpu_ms_per_req"], r["on"]["rounds_cpu_ms_per_req"])
        pairs = zip(*off_on, strict=True)
        rounds = " ".join(f"{a:.3f}/{b:.3f}" for a, b in pairs)
        lines.append(f"  {'':<16} rounds (off/on ms): {rounds}")
    sink = result["sink"]
    lines.append(
        f"  sink received {sink['requests']} exports ({sink['bytes']} bytes); "
        f"spans lost: {result['trace_export_failures']:.0f}"
    )
    return "\n".join(lines)

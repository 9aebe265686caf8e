"""`scripts/bench --tracing`: the throughput scenarios (ns64, st64) against a gateway with
tracing off and then on (sample_ratio 1.0, every span exported to a local OTLP sink), back to
back, one worker pinned to CPU 0 as in the main run; CPU per request on / off is the figure.
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
    """Off, then on: each scenario's req/s and CPU ms per request, and on / off."""
    port = free_port()
    sink = bench.children.start(
        [*pin_prefix(LOAD_CPU), sys.executable, str(HERE / "otlp_sink.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    wait_port(port, 20, sink)
    endpoint = f"http://127.0.0.1:{port}/v1/traces"
    traced = _config_with_tracing(config_path, endpoint, bench.tmp / "gateway-traced.yaml")
    try:
        off = _run(bench, config_path, bench.tmp / "gateway-untraced.log", "off")
        on = _run(bench, traced, bench.tmp / "gateway-traced.log", "on")
        _, _, stats = http("GET", f"http://127.0.0.1:{port}/stats", {})
    finally:
        bench.children.stop(sink)
    result: dict[str, Any] = {
        "sample_ratio": 1.0,
        "sink": orjson.loads(stats),
        "trace_export_failures": on.pop("trace_export_failures"),
        "ceiling": CEILING,
        "scenarios": {},
    }
    off.pop("trace_export_failures")
    for name, r_off in off.items():
        r_on = on[name]
        ratio = r_on["cpu_ms_per_req"] / r_off["cpu_ms_per_req"]
        result["scenarios"][name] = {
            "off": {"rps": r_off["rps"], "cpu_ms_per_req": r_off["cpu_ms_per_req"]},
            "on": {"rps": r_on["rps"], "cpu_ms_per_req": r_on["cpu_ms_per_req"]},
            "cpu_per_req_on_vs_off": round(ratio, 3),
            "within_ceiling": ratio <= CEILING,
        }
    return result


def text(result: dict[str, Any]) -> str:
    lines = [
        "",
        f"tracing (sample_ratio {result['sample_ratio']}, OTLP/HTTP to a local sink): "
        f"CPU per request on / off, ceiling {result['ceiling']}x",
    ]
    for name, r in result["scenarios"].items():
        lines.append(
            f"  {name:<16} off {r['off']['rps']:>8.0f} req/s {r['off']['cpu_ms_per_req']:.3f} ms"
            f" | on {r['on']['rps']:>8.0f} req/s {r['on']['cpu_ms_per_req']:.3f} ms"
            f" | {r['cpu_per_req_on_vs_off']:.3f}x {'ok' if r['within_ceiling'] else 'OVER'}"
        )
    sink = result["sink"]
    lines.append(
        f"  sink received {sink['requests']} exports ({sink['bytes']} bytes); "
        f"spans lost: {result['trace_export_failures']:.0f}"
    )
    return "\n".join(lines)

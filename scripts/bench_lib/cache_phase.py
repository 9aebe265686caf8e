"""`scripts/bench --cache`: the response cache's cost per request. For ns64 and st64: the bare
aiohttp relay (the floor), the gateway with no cache, a miss (every request asked upstream and
kept again: `x-gateway-cache: refresh`) and a hit (every request answered from the cache, Redis
as configured); one worker pinned to CPU 0 as in the main run. CPU ms per request is the figure.
"""

from __future__ import annotations

import re
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from load import Target, run_load
from load import measure as measure_load
from plan import THROUGHPUT, Scenario
from proc import GATEWAY_CPU, LOAD_CPU, pin_prefix
from stack import Gateway, http, start_gateway

if TYPE_CHECKING:
    from run import Bench

TTL_S = 3600


def _config_with_cache(config_path: Path, out: Path) -> Path:
    config = yaml.safe_load(config_path.read_text())
    config["cache"] = {"ttl_s": TTL_S}
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def _cache_counts(base: str) -> dict[str, float]:
    _, _, body = http("GET", f"{base}/metrics", {})
    found = re.findall(rb'^gateway_cache_requests_total\{result="(\w+)"\} ([0-9.e+]+)$', body, re.M)
    return {k.decode(): float(v) for k, v in found}


def _measure(bench: Bench, pid: int, target: Target, sc: Scenario) -> dict[str, Any]:
    args, load_pin = bench.args, pin_prefix(LOAD_CPU)
    bench.open_connections(target, sc, load_pin)
    result = measure_load(
        pid, sc,
        partial(run_load, args, target, sc, sc.duration_s, args.requests, bench.tmp, load_pin),
        None, bench.mock_pid, GATEWAY_CPU,
    )  # fmt: skip
    return {k: result[k] for k in ("rps", "cpu_ms_per_req", "errors")}


def _gateway_runs(
    bench: Bench, config: Path, label: str, runs: list[tuple[str, str]]
) -> dict[str, dict[str, Any]]:
    """Start a gateway from `config`, then measure each (run name, endpoint) per scenario."""
    plan = [sc for sc in bench.plan if sc.name in THROUGHPUT]
    gw: Gateway = start_gateway(
        bench.children, config, bench.tmp / f"gateway-{label}.log", pin_prefix(GATEWAY_CPU)
    )
    out: dict[str, dict[str, Any]] = {sc.name: {} for sc in plan}
    try:
        bench.warm_up(gw, plan, pin_prefix(LOAD_CPU))
        for sc in plan:
            for run, endpoint in runs:
                print(f"running {sc.name} cache {run} ...", file=sys.stderr, flush=True)
                target = Target(gw.base, bench.key, endpoint, sc.gateway_model)
                out[sc.name][run] = _measure(bench, gw.pid, target, sc)
        if label == "cached":
            out["_counts"] = _cache_counts(gw.base)
    finally:
        bench.children.stop(gw.proc)
    return out


def cache_phase(bench: Bench, config_path: Path) -> dict[str, Any]:
    """Floor, off, miss, hit: each scenario's req/s and CPU ms per request, and the ratios."""
    if bench.floor_base is None:
        bench.start_floor()
    assert bench.floor_base is not None
    cached = _config_with_cache(config_path, bench.tmp / "gateway-cached.yaml")
    plan = [sc for sc in bench.plan if sc.name in THROUGHPUT]
    result: dict[str, Any] = {"ttl_s": TTL_S, "scenarios": {}}
    for sc in plan:
        print(f"running {sc.name} on the floor relay ...", file=sys.stderr, flush=True)
        floor = Target(bench.floor_base, None, sc.direct_endpoint, sc.upstream_model)
        result["scenarios"][sc.name] = {"floor": _measure(bench, bench.floor_pid, floor, sc)}
    off = _gateway_runs(bench, config_path, "uncached", [("off", "chat")])
    on = _gateway_runs(bench, cached, "cached", [("miss", "chat_refresh"), ("hit", "chat_cached")])
    result["cache_requests"] = on.pop("_counts")
    for name, entry in result["scenarios"].items():
        entry.update(off[name])
        entry.update(on[name])
        hit = entry["hit"]["cpu_ms_per_req"]
        for other in ("floor", "off", "miss"):
            base = entry[other]["cpu_ms_per_req"]
            entry[f"hit_vs_{other}"] = round(hit / base, 3) if base else None
    return result


def text(result: dict[str, Any]) -> str:
    lines = ["", "response cache: gateway CPU ms per request (req/s), one worker on CPU 0"]
    for name, e in result["scenarios"].items():
        cells = " | ".join(
            f"{run} {e[run]['cpu_ms_per_req']:.3f} ms ({e[run]['rps']:.0f}/s)"
            for run in ("floor", "off", "miss", "hit")
        )
        lines.append(f"  {name:<14} {cells}")
        lines.append(
            f"  {'':<14} hit / floor {e['hit_vs_floor']}x, hit / off {e['hit_vs_off']}x,"
            f" hit / miss {e['hit_vs_miss']}x"
        )
    counts = ", ".join(f"{k} {v:.0f}" for k, v in sorted(result["cache_requests"].items()))
    lines.append(f"  gateway_cache_requests_total: {counts}")
    return "\n".join(lines)

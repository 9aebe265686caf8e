"""The bench's output: the results table, and each target of the "Speed" issue checked.
Pure: takes the result dicts run.py builds, returns text and target verdicts."""

from __future__ import annotations

COLUMNS = (
    ("scenario", 22, "s"),
    ("target", 8, "s"),
    ("req/s", 9, ".1f"),
    ("p50 ms", 9, ".3f"),
    ("p99 ms", 9, ".3f"),
    ("TTFB p50", 9, ".3f"),
    ("TTFB p99", 9, ".3f"),
    ("CPU ms/req", 10, ".3f"),
    ("CPU %", 6, ".0f"),
    ("RSS peak MB", 11, ".1f"),
    ("errors", 6, "d"),
    ("reads/resp", 10, ".1f"),
    ("others on CPU0 %", 16, ".0f"),
)


def _cell(value, width: int, fmt: str) -> str:
    if value is None:
        return "-".rjust(width)
    if fmt == "s":
        return str(value).ljust(width)
    return format(value, fmt).rjust(width)


def _row(scenario: str, target: str, r: dict) -> list:
    return [
        scenario,
        target,
        r["rps"],
        r["latency_ms"]["p50"],
        r["latency_ms"]["p99"],
        r["ttfb_ms"]["p50"],
        r["ttfb_ms"]["p99"],
        r.get("cpu_ms_per_req"),
        None if r.get("cpu_util") is None else r["cpu_util"] * 100,
        r.get("rss_peak_mb"),
        r["errors"],
        r.get("reads_per_response"),
        None if r.get("cpu0_others_util") is None else r["cpu0_others_util"] * 100,
    ]


def table(results: dict) -> str:
    """One line per scenario and target: direct = the mock alone (the floor); aiohttp = a bare
    aiohttp proxy with no features (only with --floor); gateway = the gateway, every feature on."""
    header = " ".join(name.ljust(w) if fmt == "s" else name.rjust(w) for name, w, fmt in COLUMNS)
    lines = [header, "-" * len(header)]
    for name, scenario in results["scenarios"].items():
        for target in ("direct", "aiohttp", "gateway"):
            r = scenario.get(target)
            if r is None:
                continue
            cells = _row(name, target, r)
            lines.append(
                " ".join(_cell(v, w, fmt) for v, (_, w, fmt) in zip(cells, COLUMNS, strict=True))
            )
    return "\n".join(lines)


def _check(name: str, value, limit: float, op: str, unit: str) -> dict:
    if value is None:
        ok = False
    elif op == "<=":
        ok = value <= limit
    else:
        ok = value >= limit
    return {"target": name, "value": value, "limit": f"{op} {limit:g}{unit}", "met": ok}


def targets(results: dict) -> list[dict]:
    """The issue's targets, evaluated on whatever scenarios ran (all features on)."""
    s = results["scenarios"]
    out: list[dict] = []

    def gw(name: str) -> dict | None:
        return s.get(name, {}).get("gateway")

    if r := gw("nonstream_c64"):
        out.append(_check("non-stream c=64: CPU ms/request", r["cpu_ms_per_req"], 0.5, "<=", " ms"))
        out.append(_check("non-stream c=64: req/s", r["rps"], 2000, ">=", ""))
    if r := gw("nonstream_c1"):
        out.append(_check("non-stream c=1: added p50 latency", r["added_p50_ms"], 0.5, "<=", " ms"))
    for name in ("stream20_c1", "stream20_c64"):
        if r := gw(name):
            label = name.replace("stream20_c", "20-chunk stream c=")
            out.append(_check(f"{label}: CPU ms/stream", r["cpu_ms_per_req"], 1.0, "<=", " ms"))
    if r := gw("stream20_c1"):
        out.append(
            _check("20-chunk stream c=1: added TTFB p50", r["added_ttfb_p50_ms"], 0.5, "<=", " ms")
        )
    if r := gw("slow_streams"):
        c = r["concurrency"]
        out.append(_check(f"{c} slow streams: errors", r["errors"], 0, "<=", ""))
        out.append(
            _check(f"{c} slow streams: throughput vs direct", r["rps_vs_direct"], 0.95, ">=", "")
        )
        out.append(_check(f"{c} slow streams: peak RSS", r["rss_peak_mb"], 300, "<=", " MB"))
    out.append(_check("idle RSS", results["gateway"]["idle_rss_mb"], 80, "<=", " MB"))
    return out


def targets_text(checks: list[dict]) -> str:
    lines = []
    for c in checks:
        value = c["value"]
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        lines.append(f"  [{'met' if c['met'] else 'MISSED'}] {c['target']}: {shown} ({c['limit']})")
    return "\n".join(lines)

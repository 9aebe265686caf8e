"""The bench's output: the results tables, the ratios judged within the run, and each target of
the "Speed" and "Scale" issues checked. Pure: takes the result dicts run.py builds, returns text
and target verdicts."""

from __future__ import annotations

from typing import Any

from plan import TRANSLATED_VS_PASSTHROUGH

Results = dict[str, Any]

COLUMNS = (
    ("scenario", 22, "s"),
    ("target", 9, "s"),
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
    ("load CPU %", 10, ".0f"),
    ("others on CPU0 %", 16, ".0f"),
)


def _cell(value: Any, width: int, fmt: str) -> str:
    if value is None:
        return "-".rjust(width)
    if fmt == "s":
        return str(value).ljust(width)
    return format(value, fmt).rjust(width)


def _percent(value: float | None) -> float | None:
    return None if value is None else value * 100


def _row(scenario: str, target: str, r: Results) -> str:
    cells = [
        scenario,
        target,
        r["rps"],
        r["latency_ms"]["p50"],
        r["latency_ms"]["p99"],
        r["ttfb_ms"]["p50"],
        r["ttfb_ms"]["p99"],
        r.get("cpu_ms_per_req"),
        _percent(r.get("cpu_util")),
        r.get("rss_peak_mb"),
        r["errors"],
        r.get("reads_per_response"),
        _percent(r.get("load_cpu_util")),
        _percent(r.get("cpu0_others_util")),
    ]
    return " ".join(_cell(v, w, fmt) for v, (_, w, fmt) in zip(cells, COLUMNS, strict=True))


def _header() -> list[str]:
    header = " ".join(name.ljust(w) if fmt == "s" else name.rjust(w) for name, w, fmt in COLUMNS)
    return [header, "-" * len(header)]


def table(results: Results) -> str:
    """One line per scenario and target: direct = the mock alone (the floor); aiohttp = a bare
    aiohttp proxy with no features (only with --floor); gateway = the gateway, every feature on."""
    lines = _header()
    for name, scenario in results["scenarios"].items():
        for target in ("direct", "aiohttp", "gateway"):
            r = scenario.get(target)
            if r is not None:
                lines.append(_row(name, target, r))
    return "\n".join(lines)


def workers_table(results: Results) -> str:
    """The throughput scenarios with one worker (the main table's row) and with N workers."""
    w = results.get("workers")
    if not w or not w["scenarios"]:
        return ""
    n, placement = w["n"], w["placement"]
    lines = [
        f"--workers {n}: gateway on {placement['gateway']}; load generator and mock unpinned; "
        f"1 worker = {placement['one worker']}",
        *_header(),
    ]
    for name, entry in w["scenarios"].items():
        lines.append(_row(name, "1 worker", results["scenarios"][name]["gateway"]))
        lines.append(_row(name, f"{n} workers", entry["gateway"]))
    return "\n".join(lines)


def ratios(results: Results) -> list[dict[str, Any]]:
    """Figures judged against each other, both measured in this run (absolute figures move with
    the machine and its neighbours; these ratios much less)."""
    s = results["scenarios"]
    out: list[dict[str, Any]] = []
    translated, passthrough = TRANSLATED_VS_PASSTHROUGH
    if translated in s and passthrough in s:
        a, b = s[translated]["gateway"], s[passthrough]["gateway"]
        label = f"gateway CPU ms/stream, {translated} / {passthrough}"
        out.append(_ratio(label, a["cpu_ms_per_req"], b["cpu_ms_per_req"], "<=", 1.3))
    w = results.get("workers") or {}
    for name, entry in w.get("scenarios", {}).items():
        n, one, many = w["n"], s[name]["gateway"], entry["gateway"]
        label = f"{name} req/s, {n} workers / 1 worker"
        out.append(_ratio(label, many["rps"], one["rps"], ">=", round(0.9 * n, 2)))
        label = f"{name} gateway CPU ms/req, {n} workers / 1 worker"
        out.append(_ratio(label, many["cpu_ms_per_req"], one["cpu_ms_per_req"]))
    return out


def _ratio(
    name: str,
    a: float | None,
    b: float | None,
    op: str | None = None,
    limit: float | None = None,
) -> dict[str, Any]:
    value = round(a / b, 3) if a is not None and b else None
    entry: dict[str, Any] = {"ratio": name, "a": a, "b": b, "value": value}
    if op is not None and limit is not None:
        entry["limit"] = f"{op} {limit:g}x"
        entry["met"] = value is not None and (value <= limit if op == "<=" else value >= limit)
    return entry


def ratios_text(entries: list[dict[str, Any]]) -> str:
    lines = []
    for r in entries:
        shown = "-" if r["value"] is None else f"{r['value']:.2f}x"
        line = f"  {r['ratio']}: {_num(r['a'])} / {_num(r['b'])} = {shown}"
        if "limit" in r:
            line += f" (target {r['limit']}: {'met' if r['met'] else 'MISSED'})"
        lines.append(line)
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _check(name: str, value: Any, limit: float, op: str, unit: str) -> dict[str, Any]:
    if value is None:
        ok = False
    elif op == "<=":
        ok = value <= limit
    else:
        ok = value >= limit
    return {"target": name, "value": value, "limit": f"{op} {limit:g}{unit}", "met": ok}


def targets(results: Results) -> list[dict[str, Any]]:
    """The issues' targets, evaluated on whatever scenarios ran (all features on)."""
    s = results["scenarios"]
    out: list[dict[str, Any]] = []

    def gw(name: str) -> Results | None:
        found: Results | None = s.get(name, {}).get("gateway")
        return found

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
    for r in ratios(results):
        if "limit" in r:
            out.append({"target": r["ratio"], "value": r["value"], "limit": r["limit"],
                        "met": r["met"]})  # fmt: skip
    return out


def targets_text(checks: list[dict[str, Any]]) -> str:
    lines = []
    for c in checks:
        value = c["value"]
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        lines.append(f"  [{'met' if c['met'] else 'MISSED'}] {c['target']}: {shown} ({c['limit']})")
    return "\n".join(lines)


def machine_text(results: Results) -> str:
    meta = results["meta"]
    m, pinning = meta["machine"], meta["pinning"]
    where = (
        f"gateway on {pinning['gateway']}, load generator + mock + driver on "
        f"{pinning['load+mock+driver']}"
        if isinstance(pinning, dict)
        else f"pinning: {pinning}"
    )
    return (
        f"machine: {m['cpu_model']}, {m['cpus']} CPUs, Linux {m['kernel']}, Python {m['python']};"
        f" {where}"
    )


def text(results: Results) -> str:
    """Everything run.py prints: machine, tables, ratios and targets."""
    parts = [machine_text(results), "", table(results)]
    workers = workers_table(results)
    if workers:
        parts += ["", workers]
    entries = ratios(results)
    if entries:
        m = results["meta"]["machine"]
        head = f"ratios (both figures from this run, on {m['cpu_model']} with {m['cpus']} CPUs):"
        parts += ["", head, ratios_text(entries)]
    parts += [
        "",
        "targets (gateway on one core unless --workers, every feature on):",
        targets_text(results["targets"]),
    ]
    return "\n".join(parts)

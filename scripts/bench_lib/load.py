"""Sending a scenario's load (the bundled load generator, or wrk for non-stream load) and
measuring what it cost a process tree: CPU, memory, and the load tools' own CPU beside it."""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from endpoints import ENDPOINTS
from plan import Scenario
from proc import (
    CLK_TCK,
    LOAD_CPU,
    RssSampler,
    cpu_busy_ticks,
    cpu_times,
    pin_prefix,
    process_tree,
    reset_peak_rss,
    status_kb,
    tree_cpu_times,
)

HERE = Path(__file__).resolve().parent
SETTLE_S = 0.3  # after the load: let queued request-log rows and quota charges be written
Result = dict[str, Any]


@dataclass(frozen=True)
class Target:
    """Where a load goes: a server's root, the key (None for the mock), an endpoint, a model."""

    base: str
    key: str | None
    endpoint: str
    model: str

    @property
    def url(self) -> str:
        return self.base + ENDPOINTS[self.endpoint].path


def run_loadgen(
    target: Target, sc: Scenario, duration: float, requests: int, pin: list[str]
) -> Result:
    argv = [
        *pin,
        sys.executable,
        str(HERE / "loadgen.py"),
        "--url", target.url,
        "--endpoint", target.endpoint,
        "--model", target.model,
        "--concurrency", str(sc.concurrency),
        "--duration", str(duration),
        "--requests", str(requests),
        "--timeout", "30",
        "--ramp", str(sc.ramp_s if requests == 0 or duration > 1 else 0),
    ]  # fmt: skip
    if target.key:
        argv += ["--key", target.key]
    if sc.stream:
        argv.append("--stream")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed: {done.stderr.strip()[-2000:]}")
    result: Result = orjson.loads(done.stdout.strip().splitlines()[-1])
    return result


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _wrk_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unreadable wrk duration {text!r}")
    return round(float(match[1]) * _UNITS[match[2]], 3)


def run_wrk(target: Target, sc: Scenario, duration: float, tmp: Path, pin: list[str]) -> Result:
    endpoint = ENDPOINTS[target.endpoint]
    body = endpoint.body(target.model, sc.stream).decode()
    script = tmp / "wrk.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{body}]==]"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in endpoint.headers(target.key)]
    script.write_text("\n".join(lines) + "\n")
    seconds = max(1, round(duration))
    argv = [
        *pin, "wrk", "-t1", f"-c{sc.concurrency}", f"-d{seconds}s",
        "--latency", "--timeout", "30s", "-s", str(script), target.url,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    out = done.stdout
    if done.returncode != 0 or "Requests/sec" not in out:
        raise RuntimeError(f"wrk failed: {done.stderr.strip() or out}")
    dist = dict(re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", out, re.M))  # "1.03s " is padded
    found = re.search(r"(\d+) requests in ([\d.]+)(\w+),", out)
    if found is None or "50" not in dist or "99" not in dist:
        raise RuntimeError(f"unreadable wrk output: {out}")
    total, elapsed, unit = found.groups()
    elapsed_s = float(elapsed) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]
    non2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", out) or [0, 0])[1])
    socket_errors = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    kinds = {}
    if non2xx:
        kinds["non-2xx"] = non2xx
    if socket_errors:
        for name, n in zip(
            ("connect", "read", "write", "timeout"), socket_errors.groups(), strict=True
        ):
            if int(n):
                kinds[name] = int(n)
    completed = int(total) - non2xx
    return {
        "tool": "wrk",
        "concurrency": sc.concurrency,
        "completed": completed,
        "errors": sum(kinds.values()),
        "error_kinds": kinds,
        "elapsed_s": elapsed_s,
        "rps": round(completed / elapsed_s, 1),
        "latency_ms": {"p50": _wrk_ms(dist["50"]), "p99": _wrk_ms(dist["99"]), "mean": None},
        # wrk sees whole answers only; a non-stream answer arrives in one piece anyway.
        "ttfb_ms": {"p50": None, "p99": None},
        "reads_per_response": None,
    }


def run_load(
    args: argparse.Namespace,
    target: Target,
    sc: Scenario,
    duration: float,
    requests: int,
    tmp: Path,
    pin: list[str],
    warmup: bool = False,
) -> Result:
    """wrk for timed non-stream load when it is there, the bundled generator otherwise."""
    if not sc.stream and args.wrk and not (warmup or requests):
        return run_wrk(target, sc, duration, tmp, pin)
    return run_loadgen(target, sc, duration, requests, pin)


def _children_cpu_ticks() -> float:
    """CPU of this driver's reaped children (the load tools), in clock ticks."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * CLK_TCK


def measure(
    pid: int,
    sc: Scenario,
    load: Callable[[], Result],
    profile_dir: Path | None,
    mock_pid: int,
    pinned_cpu: int | None,
) -> Result:
    """Run `load` and attribute the CPU and memory of process `pid` and its children (a
    supervisor's workers) to it. `pinned_cpu`: the one CPU the tree is pinned to, whose other
    busy time is reported as neighbours' (None when it is not pinned to one CPU)."""
    pids = process_tree(pid)
    reset_ok = len(pids) == 1 and reset_peak_rss(pid)
    spy = start_profiler(pid, sc, profile_dir) if profile_dir is not None else None
    (user0, sys0), mock0 = tree_cpu_times(pids), sum(cpu_times(mock_pid))
    cpu_before = cpu_busy_ticks(pinned_cpu) if pinned_cpu is not None else 0
    tools0 = _children_cpu_ticks()
    started = time.monotonic()
    with RssSampler(pids) as sampler:
        result = load()
        time.sleep(SETTLE_S)
    (user1, sys1), mock1 = tree_cpu_times(pids), sum(cpu_times(mock_pid))
    cpu_after = cpu_busy_ticks(pinned_cpu) if pinned_cpu is not None else 0
    tools1 = _children_cpu_ticks()
    wall = time.monotonic() - started
    if spy is not None and profile_dir is not None:
        spy.wait(timeout=60)
        summarise_profile(profile_dir / f"{sc.name}.txt")
    ticks = (user1 + sys1) - (user0 + sys0)
    cpu_s = ticks / CLK_TCK
    peak_kb = max(sampler.peak_kb, status_kb(pid, "VmHWM") if reset_ok else 0)
    result["processes"] = len(pids)
    result["cpu_s"] = round(cpu_s, 3)
    result["cpu_user_s"] = round((user1 - user0) / CLK_TCK, 3)
    result["cpu_sys_s"] = round((sys1 - sys0) / CLK_TCK, 3)
    result["cpu_ms_per_req"] = (
        round(cpu_s * 1000 / result["completed"], 3) if result["completed"] else None
    )
    # In cores: above 1 when several workers run at once.
    result["cpu_util"] = round(cpu_s / (result["elapsed_s"] + SETTLE_S), 3)
    result["rss_peak_mb"] = round(peak_kb / 1024, 1)
    # What the load generator (or wrk) and the mock took meanwhile, in cores: near 1 on a
    # dedicated load core means the load, not the gateway, set the pace.
    load_ticks = (tools1 - tools0) + (mock1 - mock0)
    result["load_cpu_util"] = round(load_ticks / CLK_TCK / wall, 3)
    # Other processes on the gateway's core (this machine may be shared): a busy neighbour
    # lowers req/s and raises latency while CPU ms/req stays comparable.
    others = (cpu_after - cpu_before) - ticks
    result["cpu0_others_util"] = (
        round(max(0, others) / CLK_TCK / wall, 3) if pinned_cpu is not None else None
    )
    return result


# -- profiling (optional: --profile DIR) ------------------------------------------------------


def start_profiler(pid: int, sc: Scenario, out_dir: Path) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    argv = [
        *pin_prefix(LOAD_CPU), spy, "record", "--pid", str(pid), "--rate", "250",
        "--format", "raw", "--output", str(out_dir / f"{sc.name}.txt"),
        "--duration", str(max(1, int(sc.duration_s))),
    ]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


_PROFILE_FRAME = re.compile(
    r" \((?:[^)]*/)?(?:site-packages/|python3\.\d+/)?([^/)]*?/?[^/)]+\.py):\d+\)"
)


def summarise_profile(path: Path, top: int = 40) -> None:
    """Self and inclusive sample shares per function, from py-spy's collapsed stacks."""
    if not path.exists():
        return
    self_n: dict[str, int] = {}
    incl_n: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        # "func (path/file.py:123)" -> "func (file.py)": one entry per function, not per line
        frames = [_PROFILE_FRAME.sub(r" (\1)", f) for f in stack.split(";")]
        self_n[frames[-1]] = self_n.get(frames[-1], 0) + n
        for frame in set(frames):
            incl_n[frame] = incl_n.get(frame, 0) + n
    if not total:
        return
    lines = [f"{total} samples", "", "self %  function"]
    for frame, n in sorted(self_n.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * n / total:6.1f}  {frame}")
    lines += ["", "incl %  function"]
    for frame, n in sorted(incl_n.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * n / total:6.1f}  {frame}")
    path.with_name(path.stem + "-top.txt").write_text("\n".join(lines) + "\n")

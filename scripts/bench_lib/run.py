"""The bench driver (started by scripts/bench): mock upstream, gateway in production mode, load.

Placement (with taskset, on a machine with 2+ CPUs): the gateway alone on CPU 0; the load
generator, the mock upstream and this driver on CPU 1. PostgreSQL and Redis are shared services
and are not pinned. The same load runs against the mock directly first, as the floor.

Production mode: PostgreSQL request log in a private database (created here, dropped at the
end), the Redis limiter under a unique key prefix (its keys deleted at the end), a database key
made with `gateway keys create`, INFO logging with one JSON line per request (stderr goes to a
file in the temp dir), metrics on. A tier with very high limits keeps the limiter from refusing.

Output: a table on stdout and a JSON file (default bench-results.json).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import orjson
import report
import yaml
from loadgen import chat_body
from proc import (
    CLK_TCK,
    Children,
    RssSampler,
    cpu_busy_ticks,
    cpu_times,
    free_port,
    pin_prefix,
    reset_peak_rss,
    status_kb,
    wait_port,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
GATEWAY_CPU, LOAD_CPU = 0, 1
SETTLE_S = 0.3  # after the load: let queued request-log rows and quota charges be written


@dataclass(frozen=True)
class Scenario:
    name: str
    stream: bool
    concurrency: int
    chunks: int
    delay_ms: int
    ttft_ms: int
    duration_s: float
    ramp_s: float = 0.0  # worker starts spread over this long (the slow streams: one stream)

    @property
    def shape(self) -> str:
        return f"c{self.chunks}-d{self.delay_ms}-t{self.ttft_ms}"

    @property
    def upstream_model(self) -> str:
        return f"mock-{self.shape}"

    @property
    def gateway_model(self) -> str:
        return f"bench-{self.shape}"


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    d = args.duration
    slow_d = max(d, 3.0) if not args.quick else d
    all_ = [
        Scenario("nonstream_c1", False, 1, 20, 0, 0, d),
        Scenario("nonstream_c64", False, 64, 20, 0, 0, d),
        Scenario("stream20_c1", True, 1, 20, args.chunk_delay_ms, args.ttft_ms, d),
        Scenario("stream20_c64", True, 64, 20, args.chunk_delay_ms, args.ttft_ms, d),
        # Streams of equal length started at once would stay in lockstep, and every second the
        # gateway would have to open all of them within the same few milliseconds: spread the
        # starts over one stream's length, as independent clients would be.
        Scenario("slow_streams", True, args.slow_concurrency, 20, 50, 0, slow_d, 0.95),
    ]
    if args.scenarios:
        wanted = set(args.scenarios.split(","))
        all_ = [s for s in all_ if s.name in wanted]
    return all_


# -- services: private database and redis prefix ---------------------------------------------


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


async def _admin(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _count_rows(url: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        return await conn.fetchval("SELECT count(*) FROM ai_request_log")
    finally:
        await conn.close()


def redis_cleanup(url: str, prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
        return len(keys)
    finally:
        client.close()


def gateway_config(
    path: Path, db_url: str, redis_url: str, prefix: str, mock_port: int, tmp: Path, shapes
) -> None:
    config = {
        "server": {"host": "127.0.0.1", "port": 0, "shutdown_grace_s": 5},
        "database": {"url": db_url, "spill_path": str(tmp / "spill.jsonl")},
        "redis": {"url": redis_url, "prefix": prefix},
        "auth": {"admin_key": "", "keys": []},
        "providers": {
            "mock": {
                "type": "openai",
                "base_url": f"http://127.0.0.1:{mock_port}/v1",
                "api_key": "sk-mock-upstream",
            }
        },
        "models": {
            s.gateway_model: {
                "provider": "mock",
                "model": s.upstream_model,
                "input_price": 0.15,
                "output_price": 0.60,
            }
            for s in shapes
        },
        "quota": {
            "default_tier": "free",
            "tiers": {
                "free": {"rpm": 20, "tpd": 100000},
                # Far above what the bench can send, yet both limits are checked and charged.
                "bench": {"rpm": 1_000_000_000, "tpd": 1_000_000_000_000},
            },
        },
        "logging": {"level": "INFO", "content": False},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


# -- load ---------------------------------------------------------------------------------------


def run_loadgen(
    url: str, key: str | None, model: str, sc: Scenario, duration: float, requests: int
):
    argv = [
        *pin_prefix(LOAD_CPU),
        sys.executable,
        str(HERE / "loadgen.py"),
        "--url", url,
        "--model", model,
        "--concurrency", str(sc.concurrency),
        "--duration", str(duration),
        "--requests", str(requests),
        "--timeout", "30",
        "--ramp", str(sc.ramp_s if requests == 0 or duration > 1 else 0),
    ]  # fmt: skip
    if key:
        argv += ["--key", key]
    if sc.stream:
        argv.append("--stream")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed: {done.stderr.strip()[-2000:]}")
    return orjson.loads(done.stdout.strip().splitlines()[-1])


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _wrk_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unreadable wrk duration {text!r}")
    return round(float(match[1]) * _UNITS[match[2]], 3)


def run_wrk(url: str, key: str | None, model: str, sc: Scenario, duration: float, tmp: Path):
    body = chat_body(model, sc.stream).decode()
    script = tmp / "wrk.lua"
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = [==[{body}]==]",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    if key:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {key}"')
    script.write_text("\n".join(lines) + "\n")
    seconds = max(1, round(duration))
    argv = [
        *pin_prefix(LOAD_CPU), "wrk", "-t1", f"-c{sc.concurrency}", f"-d{seconds}s",
        "--latency", "--timeout", "30s", "-s", str(script), url,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    out = done.stdout
    if done.returncode != 0 or "Requests/sec" not in out:
        raise RuntimeError(f"wrk failed: {done.stderr.strip() or out}")
    dist = dict(re.findall(r"^\s+(\d+)%\s+(\S+)$", out, re.M))
    total, elapsed, unit = re.search(r"(\d+) requests in ([\d.]+)(\w+),", out).groups()
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


def run_load(args, url, key, model, sc, duration, requests, tmp, warmup=False):
    if not sc.stream and args.wrk and not (warmup or requests):
        return run_wrk(url, key, model, sc, duration, tmp)
    return run_loadgen(url, key, model, sc, duration, requests)


def measure_process(pid: int, sc: Scenario, load, profile_dir: Path | None) -> dict:
    """Run `load` and attribute the CPU and memory of process `pid` (on CPU 0) to it."""
    reset_ok = reset_peak_rss(pid)
    spy = None
    if profile_dir is not None:
        spy = start_profiler(pid, sc, profile_dir)
    (user0, sys0), cpu0_before = cpu_times(pid), cpu_busy_ticks(GATEWAY_CPU)
    before = user0 + sys0
    started = time.monotonic()
    with RssSampler(pid) as sampler:
        result = load()
        time.sleep(SETTLE_S)
    (user1, sys1), cpu0_after = cpu_times(pid), cpu_busy_ticks(GATEWAY_CPU)
    after = user1 + sys1
    wall = time.monotonic() - started
    if spy is not None:
        spy.wait(timeout=60)
        summarise_profile(profile_dir / f"{sc.name}.txt")
    cpu_s = (after - before) / CLK_TCK
    peak_kb = max(sampler.peak_kb, status_kb(pid, "VmHWM") if reset_ok else 0)
    result["cpu_s"] = round(cpu_s, 3)
    result["cpu_user_s"] = round((user1 - user0) / CLK_TCK, 3)
    result["cpu_sys_s"] = round((sys1 - sys0) / CLK_TCK, 3)
    result["cpu_ms_per_req"] = (
        round(cpu_s * 1000 / result["completed"], 3) if result["completed"] else None
    )
    result["cpu_util"] = round(cpu_s / (result["elapsed_s"] + SETTLE_S), 3)
    result["rss_peak_mb"] = round(peak_kb / 1024, 1)
    # Other processes on the gateway's core (this machine may be shared): a busy neighbour
    # lowers req/s and raises latency while CPU ms/req stays comparable.
    others = (cpu0_after - cpu0_before) - (after - before)
    result["cpu0_others_util"] = (
        round(max(0, others) / CLK_TCK / wall, 3) if pin_prefix(0) else None
    )
    return result


# -- profiling (optional: --profile DIR) ------------------------------------------------------


def start_profiler(pid: int, sc: Scenario, out_dir: Path) -> subprocess.Popen:
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


# -- main -------------------------------------------------------------------------------------


def http_get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status
    except OSError:
        return 0


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny counts, a few seconds (smoke test)")
    p.add_argument("--duration", type=float, help="seconds of load per scenario (default 10)")
    p.add_argument(
        "--requests", type=int, default=0,
        help="cap on requests per scenario (uses the Python load generator everywhere)",
    )  # fmt: skip
    p.add_argument("--slow-concurrency", type=int, help="concurrent slow streams (default 1000)")
    p.add_argument("--chunk-delay-ms", type=int, default=1, help="20-chunk streams: gap (1)")
    p.add_argument("--ttft-ms", type=int, default=0, help="20-chunk streams: time to first token")
    p.add_argument("--scenarios", help="comma-separated subset of scenario names")
    p.add_argument("--no-wrk", dest="wrk", action="store_false", help="never use wrk")
    p.add_argument("--profile", metavar="DIR", help="record py-spy profiles of the gateway here")
    p.add_argument("--out", default="bench-results.json", help="JSON results file")
    p.add_argument(
        "--floor",
        action="store_true",
        help="also measure a bare aiohttp proxy (floor_proxy.py) on CPU 0: what aiohttp costs",
    )
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (config, logs)")
    args = p.parse_args(argv)
    if args.duration is None:
        args.duration = 1.0 if args.quick else 10.0
    if args.slow_concurrency is None:
        args.slow_concurrency = 50 if args.quick else 1000
    if args.wrk and shutil.which("wrk") is None:
        args.wrk = False
        args.wrk_note = "wrk is not installed: the Python load generator ran every scenario"
    else:
        args.wrk_note = None
    return args


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    if args.wrk_note:
        print(f"note: {args.wrk_note}", file=sys.stderr)
    children = Children()
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    tag = uuid.uuid4().hex[:10]
    admin_url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get(
        "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
    )
    redis_url = os.environ.get("BENCH_REDIS_URL") or os.environ.get(
        "TEST_REDIS_URL", "redis://127.0.0.1:6379/0"
    )
    db_name, prefix = f"gw_bench_{tag}", f"gwbench-{tag}"
    db_url = with_database(admin_url, db_name)
    db_created = False
    profile_dir = Path(args.profile).resolve() if args.profile else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    plan = scenarios(args)
    try:
        asyncio.run(_admin(admin_url, f'CREATE DATABASE "{db_name}"'))
        db_created = True

        mock_port = free_port()
        mock = children.start(
            [*pin_prefix(LOAD_CPU), sys.executable, str(HERE / "mock_upstream.py"),
             "--port", str(mock_port)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_port(mock_port, 20, mock)

        config_path = tmp / "gateway.yaml"
        gateway_config(config_path, db_url, redis_url, prefix, mock_port, tmp, plan)
        created = subprocess.run(
            [sys.executable, "-m", "gateway", "keys", "create", "-c", str(config_path),
             "--user", "bench", "--tier", "bench", "--name", "bench"],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
        if created.returncode != 0:
            raise RuntimeError(f"gateway keys create failed: {created.stderr.strip()}")
        key = created.stdout.strip().splitlines()[-1]

        port = free_port()
        log_path = tmp / "gateway.log"
        with open(log_path, "wb") as log_file:
            gateway = children.start(
                [*pin_prefix(GATEWAY_CPU), sys.executable, "-m", "gateway", "serve",
                 "-c", str(config_path), "--host", "127.0.0.1", "--port", str(port)],
                stdout=subprocess.DEVNULL, stderr=log_file, cwd=ROOT,
            )  # fmt: skip
        wait_port(port, 30, gateway)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while http_get(base + "/readyz") != 200:
            if time.monotonic() > deadline or gateway.poll() is not None:
                raise RuntimeError(f"gateway not ready; see {log_path}")
            time.sleep(0.1)
        gw_url = base + "/v1/chat/completions"
        mock_url = f"http://127.0.0.1:{mock_port}/v1/chat/completions"
        floor = floor_url = None
        if args.floor:
            floor_port = free_port()
            floor = children.start(
                [*pin_prefix(GATEWAY_CPU), sys.executable, str(HERE / "floor_proxy.py"),
                 "--upstream", mock_url, "--port", str(floor_port)],
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            wait_port(floor_port, 20, floor)
            floor_url = f"http://127.0.0.1:{floor_port}/v1/chat/completions"

        # A few requests of each kind load every lazily imported module, then idle.
        for sc in plan:
            warm = Scenario(sc.name, sc.stream, 1, sc.chunks, 0, 0, 1.0)
            run_loadgen(gw_url, key, warm.gateway_model, warm, 5.0, 20)
        time.sleep(1.0)
        idle_rss_mb = round(status_kb(gateway.pid, "VmRSS") / 1024, 1)

        results: dict = {
            "meta": {
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": {
                    "cpus": os.cpu_count(),
                    "cpu_model": _cpu_model(),
                    "kernel": platform.release(),
                    "python": platform.python_version(),
                },
                "pinning": (
                    {"gateway": f"CPU {GATEWAY_CPU}", "load+mock+driver": f"CPU {LOAD_CPU}"}
                    if pin_prefix(LOAD_CPU)
                    else "none (taskset missing or a single CPU)"
                ),
                "load_tools": {
                    "non-stream": "wrk -t1" if args.wrk else "scripts/bench_lib/loadgen.py",
                    "stream": "scripts/bench_lib/loadgen.py",
                },
                "notes": [
                    n
                    for n in (
                        args.wrk_note,
                        "gateway stderr (INFO, one JSON line per request) goes to a file in "
                        "the temp dir, not a terminal",
                        "PostgreSQL and Redis are shared services and are not pinned; their "
                        "CPU is not counted in 'CPU ms/req'",
                        "TTFB: request written -> first body byte (for a stream: first event); "
                        "wrk reports no TTFB",
                    )
                    if n
                ],
                "args": {k: v for k, v in vars(args).items() if k not in ("wrk_note", "profile")},
            },
            "gateway": {"idle_rss_mb": idle_rss_mb},
            "scenarios": {},
        }
        for sc in plan:
            print(f"running {sc.name} ...", file=sys.stderr, flush=True)
            entry: dict = {"shape": asdict(sc)}
            entry["direct"] = run_load(
                args, mock_url, None, sc.upstream_model, sc, sc.duration_s, args.requests, tmp
            )
            # Warm-up: open the connections this concurrency needs, on both sides.
            run_load(args, gw_url, key, sc.gateway_model, sc, 0.05, sc.concurrency, tmp, True)
            time.sleep(SETTLE_S)
            if floor is not None:
                run_load(
                    args, floor_url, None, sc.upstream_model, sc, 0.05, sc.concurrency, tmp, True
                )
                time.sleep(SETTLE_S)
                entry["aiohttp"] = measure_process(
                    floor.pid,
                    sc,
                    lambda sc=sc: run_load(
                        args, floor_url, None, sc.upstream_model, sc, sc.duration_s,
                        args.requests, tmp,
                    ),
                    None,
                )  # fmt: skip
            gw = measure_process(
                gateway.pid,
                sc,
                lambda sc=sc: run_load(
                    args, gw_url, key, sc.gateway_model, sc, sc.duration_s, args.requests, tmp
                ),
                profile_dir,
            )
            direct = entry["direct"]
            gw["added_p50_ms"] = _diff(gw["latency_ms"]["p50"], direct["latency_ms"]["p50"])
            gw["added_ttfb_p50_ms"] = _diff(gw["ttfb_ms"]["p50"], direct["ttfb_ms"]["p50"])
            gw["rps_vs_direct"] = round(gw["rps"] / direct["rps"], 3) if direct["rps"] else None
            entry["gateway"] = gw
            results["scenarios"][sc.name] = entry

        results["gateway"]["rss_end_mb"] = round(status_kb(gateway.pid, "VmRSS") / 1024, 1)
        children.stop(gateway)
        log_text = log_path.read_text(errors="replace")
        results["features"] = {
            "request_log_lines": log_text.count('"msg":"request"'),
            "request_log_rows_in_postgres": asyncio.run(_count_rows(db_url)),
            "gateway_errors_logged": log_text.count('"level":"error"'),
            # e.g. "rate limiter backend unavailable": a silently degraded feature shows here
            "gateway_warnings": sorted(
                {
                    orjson.loads(line).get("msg", "")
                    for line in log_text.splitlines()
                    if '"level":"warning"' in line or '"level":"error"' in line
                }
            )[:10],
        }
        results["targets"] = report.targets(results)

        Path(args.out).write_text(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
        print(report.table(results))
        print()
        print("targets (gateway on one core, every feature on):")
        print(report.targets_text(results["targets"]))
        f = results["features"]
        print(
            f"\nfeatures: {f['request_log_lines']} request log lines, "
            f"{f['request_log_rows_in_postgres']} request-log rows in PostgreSQL; "
            f"idle RSS {idle_rss_mb} MB; results in {args.out}"
        )
        for message in f["gateway_warnings"]:
            print(f"gateway warned: {message}")
        if profile_dir is not None:
            print(f"profiles: {profile_dir}/<scenario>.txt and <scenario>-top.txt")
        return 0
    finally:
        children.stop_all()
        if db_created:
            try:
                asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
            except Exception as exc:
                print(f"warning: could not drop database {db_name}: {exc}", file=sys.stderr)
        try:
            redis_cleanup(redis_url, prefix)
        except Exception as exc:
            print(f"warning: could not delete redis keys {prefix}:*: {exc}", file=sys.stderr)
        if args.keep_tmp:
            print(f"temp dir kept: {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 3)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())

"""The bench driver (started by scripts/bench): mock upstream, gateway in production mode, load.

Placement (with taskset, on a machine with 2+ CPUs): the gateway alone on CPU 0; the load
generator, the mock upstream and this driver on CPU 1. PostgreSQL and Redis are shared services
and are not pinned. The same load runs against the mock directly first, as the floor.

Production mode: PostgreSQL request log in a private database (created here, dropped at the
end), the Redis limiter under a unique key prefix (its keys deleted at the end), a database key
made with `gateway keys create`, USD budgets on the key and on its user (far above what a run
spends: reserved and settled, never refused), INFO logging with one JSON line per request (stderr
goes to a file in the temp dir), metrics on. A tier with very high limits keeps the limiter from
refusing.

`--workers N` then runs the throughput scenarios again against `gateway serve --workers N`,
pinned to the first N CPUs (on a 2-CPU machine and N = 2: both, shared with the load generator
and the mock, which are unpinned for that phase), and reports its req/s beside one worker's.

Output: a table on stdout and a JSON file (default bench-results.json).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
import report
from cache_phase import cache_phase
from cache_phase import text as cache_text
from load import SETTLE_S, Result, Target, measure, run_load, run_loadgen
from plan import THROUGHPUT, Scenario, scenarios, warm_variant
from proc import (
    GATEWAY_CPU,
    LOAD_CPU,
    Children,
    free_port,
    pin_cpus_prefix,
    pin_prefix,
    process_tree,
    repin,
    status_kb,
    tree_rss_kb,
    unpin,
    wait_port,
)
from soak_phase import soak_phase
from soak_phase import text as soak_text
from stack import (
    Gateway,
    admin_sql,
    check_budgets,
    count_rows,
    create_key,
    enable_user_budget,
    gateway_config,
    log_features,
    redis_cleanup,
    start_gateway,
    with_database,
)
from tracing_phase import text as tracing_text
from tracing_phase import tracing_phase

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/bench", description=(__doc__ or "").splitlines()[0])
    p.add_argument(
        "--quick", action="store_true",
        help="half a second per scenario, tiny counts, no per-scenario warm-up (smoke test)",
    )  # fmt: skip
    p.add_argument("--duration", type=float, help="seconds of load per scenario (default 10)")
    p.add_argument(
        "--requests", type=int, default=0,
        help="cap on requests per scenario (uses the Python load generator everywhere)",
    )  # fmt: skip
    p.add_argument("--slow-concurrency", type=int, help="concurrent slow streams (default 1000)")
    p.add_argument("--chunk-delay-ms", type=int, default=1, help="20-chunk streams: gap (1)")
    p.add_argument("--ttft-ms", type=int, default=0, help="20-chunk streams: time to first token")
    p.add_argument("--scenarios", help="comma-separated subset of scenario names")
    p.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help=f"also run {', '.join(THROUGHPUT)} against `gateway serve --workers N` (N >= 2)",
    )  # fmt: skip
    p.add_argument("--no-wrk", dest="wrk", action="store_false", help="never use wrk")
    p.add_argument("--profile", metavar="DIR", help="record py-spy profiles of the gateway here")
    p.add_argument("--out", default="bench-results.json", help="JSON results file")
    p.add_argument(
        "--floor",
        action="store_true",
        help="also measure a bare aiohttp proxy (floor_proxy.py) on CPU 0: what aiohttp costs",
    )
    p.add_argument(
        "--tracing", action="store_true",
        help=f"also run {', '.join(THROUGHPUT)} with tracing off then on (OTLP to a local sink)",
    )  # fmt: skip
    p.add_argument(
        "--soak", action="store_true",
        help="also measure RSS with 100 unread streams and idle connections closed by the timeout",
    )  # fmt: skip
    p.add_argument(
        "--cache", action="store_true",
        help=f"also run {', '.join(THROUGHPUT)} on the floor relay, then with the response cache"
        " off, every request a miss, every request a hit",
    )  # fmt: skip
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (config, logs)")
    args = p.parse_args(argv)
    if args.duration is None:
        args.duration = 0.5 if args.quick else 10.0
    if args.slow_concurrency is None:
        args.slow_concurrency = 50 if args.quick else 1000
    if args.wrk and shutil.which("wrk") is None:
        args.wrk = False
        args.wrk_note = "wrk is not installed: the Python load generator ran every scenario"
    else:
        args.wrk_note = None
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


class Bench:
    """One run: what it started, where things listen, and the results as they come in."""

    def __init__(self, args: argparse.Namespace, tmp: Path, children: Children) -> None:
        self.args = args
        self.tmp = tmp
        self.children = children
        self.plan = scenarios(args)
        self.profile_dir = Path(args.profile).resolve() if args.profile else None
        self.key = ""
        self.mock_base = ""
        self.mock_pid = 0
        self.floor_base: str | None = None
        self.floor_pid = 0

    def start_mock(self) -> None:
        port = free_port()
        mock = self.children.start(
            [*pin_prefix(LOAD_CPU), sys.executable, str(HERE / "mock_upstream.py"),
             "--port", str(port)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_port(port, 20, mock)
        self.mock_base, self.mock_pid = f"http://127.0.0.1:{port}", mock.pid

    def start_floor(self) -> None:
        port = free_port()
        floor = self.children.start(
            [*pin_prefix(GATEWAY_CPU), sys.executable, str(HERE / "floor_proxy.py"),
             "--upstream", self.mock_base, "--port", str(port)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_port(port, 20, floor)
        self.floor_base, self.floor_pid = f"http://127.0.0.1:{port}", floor.pid

    def gateway_target(self, gw: Gateway, sc: Scenario) -> Target:
        return Target(gw.base, self.key, sc.endpoint, sc.gateway_model)

    def warm_up(self, gw: Gateway, plan: list[Scenario], pin: list[str]) -> None:
        """A few requests of each kind load every lazily imported module (in every worker: the
        kernel spreads a few connections per worker over them), then idle."""
        requests = (3 if self.args.quick else 20) * gw.workers
        for sc in plan:
            warm = replace(warm_variant(sc), concurrency=1 if gw.workers == 1 else 4 * gw.workers)
            run_loadgen(self.gateway_target(gw, warm), warm, 5.0, requests, pin)
        time.sleep(1.0)

    def open_connections(self, target: Target, sc: Scenario, pin: list[str]) -> None:
        """Open the connections this concurrency needs, on both sides (not in a quick run)."""
        if not self.args.quick:
            run_load(self.args, target, sc, 0.05, sc.concurrency, self.tmp, pin, warmup=True)
            time.sleep(SETTLE_S)

    def scenario(self, gw: Gateway, sc: Scenario) -> dict[str, Any]:
        """The floor (the mock directly), the bare aiohttp proxy if asked, then the gateway."""
        args, tmp, load_pin = self.args, self.tmp, pin_prefix(LOAD_CPU)
        entry: dict[str, Any] = {"shape": asdict(sc)}
        direct = Target(self.mock_base, None, sc.direct_endpoint, sc.upstream_model)
        entry["direct"] = run_load(args, direct, sc, sc.duration_s, args.requests, tmp, load_pin)
        target = self.gateway_target(gw, sc)
        self.open_connections(target, sc, load_pin)
        if self.floor_base is not None:
            floor = Target(self.floor_base, None, sc.direct_endpoint, sc.upstream_model)
            self.open_connections(floor, sc, load_pin)
            entry["aiohttp"] = measure(
                self.floor_pid, sc,
                partial(run_load, args, floor, sc, sc.duration_s, args.requests, tmp, load_pin),
                None, self.mock_pid, GATEWAY_CPU,
            )  # fmt: skip
        gw_result = measure(
            gw.pid, sc,
            partial(run_load, args, target, sc, sc.duration_s, args.requests, tmp, load_pin),
            self.profile_dir, self.mock_pid, GATEWAY_CPU,
        )  # fmt: skip
        entry["gateway"] = _compare(gw_result, entry["direct"])
        return entry

    def workers_phase(self, config_path: Path, one: dict[str, Any]) -> dict[str, Any]:
        """The throughput scenarios against `gateway serve --workers N`, beside one worker."""
        args, tmp, n = self.args, self.tmp, self.args.workers
        plan = [sc for sc in self.plan if sc.name in THROUGHPUT]
        gw_pin = pin_cpus_prefix(n)
        out: dict[str, Any] = {
            "n": n,
            "placement": {
                "gateway": f"CPUs 0-{n - 1}" if gw_pin else "all CPUs (unpinned)",
                "load+mock+driver": "unpinned (they share the gateway's CPUs when N covers all)",
                "one worker": f"the main run: CPU {GATEWAY_CPU}, load on CPU {LOAD_CPU}",
            },
            "scenarios": {},
        }
        if not plan:
            return out
        print(f"starting gateway --workers {n} ...", file=sys.stderr, flush=True)
        log_path = tmp / "gateway-workers.log"
        gw = start_gateway(self.children, config_path, log_path, gw_pin, n)
        former = unpin(self.mock_pid)
        try:
            self.warm_up(gw, plan, [])
            out["idle_rss_mb"] = round(_tree_rss_mb(gw.pid), 1)
            for sc in plan:
                print(f"running {sc.name} with {n} workers ...", file=sys.stderr, flush=True)
                target = self.gateway_target(gw, sc)
                self.open_connections(target, sc, [])
                result = measure(
                    gw.pid, sc,
                    partial(run_load, args, target, sc, sc.duration_s, args.requests, tmp, []),
                    None, self.mock_pid, None,
                )  # fmt: skip
                single = one[sc.name]["gateway"]
                result["rps_vs_one_worker"] = _ratio(result["rps"], single["rps"])
                result["cpu_per_req_vs_one_worker"] = _ratio(
                    result["cpu_ms_per_req"], single["cpu_ms_per_req"]
                )
                out["scenarios"][sc.name] = {"gateway": result}
        finally:
            repin(self.mock_pid, former)
            self.children.stop(gw.proc)
        out["features"] = log_features(log_path)
        return out


def main(argv: list[str] | None = None) -> int:
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
    admin_key = f"sk-bench-admin-{uuid.uuid4().hex}"
    db_created = False
    bench = Bench(args, tmp, children)
    if bench.profile_dir is not None:
        bench.profile_dir.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(admin_sql(admin_url, f'CREATE DATABASE "{db_name}"'))
        db_created = True
        bench.start_mock()
        config_path = tmp / "gateway.yaml"
        mock_port = int(bench.mock_base.rsplit(":", 1)[1])
        gateway_config(
            config_path, db_url, redis_url, prefix, mock_port, tmp, bench.plan, admin_key
        )
        bench.key = create_key(config_path)
        gw = start_gateway(children, config_path, tmp / "gateway.log", pin_prefix(GATEWAY_CPU))
        enable_user_budget(gw.base, admin_key)
        check_budgets(gw.base, bench.key)
        if args.floor:
            bench.start_floor()
        bench.warm_up(gw, bench.plan, pin_prefix(LOAD_CPU))
        idle_rss_mb = round(status_kb(gw.pid, "VmRSS") / 1024, 1)

        results: dict[str, Any] = {
            "meta": _meta(args),
            "gateway": {"idle_rss_mb": idle_rss_mb},
            "scenarios": {},
        }
        for sc in bench.plan:
            print(f"running {sc.name} ...", file=sys.stderr, flush=True)
            results["scenarios"][sc.name] = bench.scenario(gw, sc)
        results["gateway"]["rss_end_mb"] = round(status_kb(gw.pid, "VmRSS") / 1024, 1)
        budget_left = check_budgets(gw.base, bench.key)
        children.stop(gw.proc)
        features = log_features(gw.log_path)
        if args.workers > 1:
            results["workers"] = bench.workers_phase(config_path, results["scenarios"])
        if args.tracing:
            results["tracing"] = tracing_phase(bench, config_path)
        if args.soak:
            results["soak"] = soak_phase(bench, config_path)
        if args.cache:
            results["cache"] = cache_phase(bench, config_path)
        features["request_log_rows_in_postgres"] = asyncio.run(count_rows(db_url))
        features["budget_remaining_usd"] = budget_left
        results["features"] = features
        results["ratios"] = report.ratios(results)
        results["targets"] = report.targets(results)

        Path(args.out).write_text(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
        print(report.text(results))
        if "tracing" in results:
            print(tracing_text(results["tracing"]))
        if "soak" in results:
            print(soak_text(results["soak"]))
        if "cache" in results:
            print(cache_text(results["cache"]))
        print(
            f"\nfeatures: {features['request_log_lines']} request log lines "
            f"({features['usage_estimated']} with usage estimated), "
            f"{features['request_log_rows_in_postgres']} request-log rows in PostgreSQL, "
            f"USD budgets on (key and user; {budget_left} left); idle RSS {idle_rss_mb} MB; "
            f"results in {args.out}"
        )
        warnings = list(features["gateway_warnings"])
        warnings += results.get("workers", {}).get("features", {}).get("gateway_warnings", [])
        for message in sorted(set(warnings)):
            print(f"gateway warned: {message}")
        if bench.profile_dir is not None:
            print(f"profiles: {bench.profile_dir}/<scenario>.txt and <scenario>-top.txt")
        return 0
    finally:
        children.stop_all()
        if db_created:
            try:
                asyncio.run(
                    admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
                )
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


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    return {
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
                "gateway stderr (INFO, one JSON line per request) goes to a file in the temp "
                "dir, not a terminal",
                "PostgreSQL and Redis are shared services and are not pinned; their CPU is not "
                "counted in 'CPU ms/req'",
                "TTFB: request written -> first body byte (for a stream: first event); wrk "
                "reports no TTFB",
                "direct: the same call sent to the mock; for a translated scenario, the "
                "upstream's call (an Anthropic Messages stream)",
                "compare figures as ratios within one run: the machine may be shared",
            )
            if n
        ],
        "args": {k: v for k, v in vars(args).items() if k not in ("wrk_note", "profile")},
    }


def _compare(gw: Result, direct: Result) -> Result:
    gw["added_p50_ms"] = _diff(gw["latency_ms"]["p50"], direct["latency_ms"]["p50"])
    gw["added_ttfb_p50_ms"] = _diff(gw["ttfb_ms"]["p50"], direct["ttfb_ms"]["p50"])
    gw["rps_vs_direct"] = _ratio(gw["rps"], direct["rps"])
    return gw


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 3)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _tree_rss_mb(pid: int) -> float:
    return tree_rss_kb(process_tree(pid)) / 1024


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

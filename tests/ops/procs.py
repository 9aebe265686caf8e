"""`gateway serve` as a real subprocess for the operations tests: a config file in a temp dir,
captured JSON log lines, signals, and a teardown that kills the whole process group."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import yaml

from tests.support.clients import Reachable, bearer, post_chat

KEY = "sk-ops-test"
WORDS = "one two three four five six seven eight nine ten eleven twelve"


def config_mapping(tmp_path: Path, port: int, **sections: dict) -> dict:
    """SQLite in tmp_path, memory limits, the echo model and one static key; sections override."""
    mapping = {
        "server": {"host": "127.0.0.1", "port": port, "shutdown_grace_s": 15},
        "database": {
            "url": f"sqlite:///{tmp_path}/gateway.db",
            "spill_path": f"{tmp_path}/spill.jsonl",
            "flush_interval_s": 0.01,
        },
        "redis": {"url": "memory://"},
        "auth": {"keys": [{"key": KEY, "user": "ops", "tier": "pro"}], "cache_refresh_s": 0.5},
        "providers": {"echo": {"type": "echo"}},
        "models": {"echo": {"provider": "echo", "model": "echo"}},
        "quota": {"default_tier": "pro", "tiers": {"pro": {"rpm": 100000, "tpd": 0}}},
        "logging": {"level": "INFO"},
    }
    mapping.update(sections)
    return mapping


def write_config(path: Path, mapping: dict) -> Path:
    path.write_text(yaml.safe_dump(mapping, sort_keys=False), encoding="utf-8")
    return path


class GatewayProcess:
    """One `gateway serve` process group; its stdout+stderr lines are kept as they come."""

    def __init__(self, config_path: Path, port: int, workers: int, cwd: Path):
        self.config_path = config_path
        self.port = port
        self.workers = workers
        self.url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        env["TMPDIR"] = str(cwd)  # the supervisor's metrics dir, even if it is killed
        command = [sys.executable, "-m", "gateway", "serve", "-c", str(config_path)]
        self.proc = subprocess.Popen(
            [*command, "--workers", str(workers)],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so teardown can kill every worker
        )
        self.lines: list[str] = []
        self.records: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    self.records.append(record)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, sig: int) -> None:
        """Signal the supervisor (or the single process)."""
        os.kill(self.proc.pid, sig)

    def logged(self, msg: str, **fields: object) -> list[dict]:
        """Log records with this message and these field values."""
        return [
            r
            for r in list(self.records)
            if r.get("msg") == msg and all(r.get(k) == v for k, v in fields.items())
        ]

    async def wait_record(self, predicate: Callable[[dict], bool], timeout_s: float = 15.0) -> dict:
        """The first log record matching `predicate` (bounded wait)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for record in list(self.records):
                if predicate(record):
                    return record
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"no matching log line within {timeout_s}s:\n" + self.tail())

    def listening_pids(self) -> list[int]:
        """Pids that logged `listening`, oldest first."""
        return [r["pid"] for r in list(self.records) if r.get("msg") == "listening"]

    async def wait_listening(self, count: int, timeout_s: float = 20.0) -> list[int]:
        """Wait until `count` processes have logged `listening`; their pids."""
        deadline = time.monotonic() + timeout_s
        while len(self.listening_pids()) < count:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("gateway did not start:\n" + self.tail())
            await asyncio.sleep(0.05)
        return self.listening_pids()

    async def wait_exit(self, timeout_s: float = 30.0) -> int:
        """The exit code, waiting at most `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"gateway still running after {timeout_s}s:\n" + self.tail())
            await asyncio.sleep(0.05)
        self._reader.join(timeout=5)
        return self.proc.returncode

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.lines[-n:])

    def kill(self) -> None:
        """Teardown: SIGTERM and a short wait, then SIGKILL the whole process group."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self._reader.join(timeout=5)


def fresh_connections() -> aiohttp.ClientSession:
    """A client that opens a new connection per request, so SO_REUSEPORT spreads them."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(force_close=True),
        timeout=aiohttp.ClientTimeout(total=20),
    )


async def chat(
    http: aiohttp.ClientSession, gateway: Reachable, text: str = "hi", model: str = "echo"
) -> tuple[int, dict]:
    """A non-stream chat request; status and JSON body."""
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    async with post_chat(http, gateway, body, KEY) as resp:
        return resp.status, await resp.json()


async def model_ids(http: aiohttp.ClientSession, gateway: Reachable) -> set[str]:
    async with http.get(f"{gateway.url}/v1/models", headers=bearer(KEY)) as resp:
        assert resp.status == 200
        return {m["id"] for m in (await resp.json())["data"]}

"""A real `python -m gateway serve` process for end-to-end tests: its config written to a file,
its output kept in a log file, started from this checkout, stopped with SIGTERM (then SIGKILL)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.support.gateway import free_port

REPO = Path(__file__).resolve().parents[2]  # the cwd, so this checkout's `gateway` is imported
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class ServeProcess:
    """`gateway serve -c <name>.yaml --port P` on a free port; `url` is its root."""

    def __init__(self, tmp_path: Path, name: str, mapping: dict[str, Any]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = tmp_path / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(mapping), encoding="utf-8")
        self.log_path = tmp_path / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        argv = [sys.executable, "-m", "gateway", "serve", "-c", str(self.config_path)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*argv, "--port", str(self.port)],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def wait_ready(self) -> None:
        """Poll /healthz until it answers (bounded); fail with the log if the process died."""
        deadline = time.monotonic() + START_TIMEOUT_S
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError(f"gateway exited:\n{self.log_text()}")
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    timeout = aiohttp.ClientTimeout(total=1)
                    async with http.get(f"{self.url}/healthz", timeout=timeout) as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise AssertionError(f"gateway not ready in {START_TIMEOUT_S}s:\n{self.log_text()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT_S."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

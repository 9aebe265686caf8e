"""A private redis-server for outage tests: our own process on a free port in a temp dir, stopped
and started at will, never the shared one; every wait is bounded (PostgreSQL: pgcluster)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.gateway import free_port

REDIS_SERVER = shutil.which("redis-server")


def wait_port(port: int, up: bool, timeout_s: float) -> None:
    """Wait until 127.0.0.1:port accepts connections (up) or refuses them (not up)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                accepting = True
        except OSError:
            accepting = False
        if accepting == up:
            return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} still {'down' if up else 'up'} after {timeout_s}s")


class PrivateRedis:
    """redis-server on a free port, no persistence."""

    def __init__(self) -> None:
        assert REDIS_SERVER is not None
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="gw-redis-"))
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        options = ["--save", "", "--appendonly", "no", "--dir", str(self.dir)]
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_port(self.port, up=True, timeout_s=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        wait_port(self.port, up=False, timeout_s=5)

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

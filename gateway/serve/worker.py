"""One worker process of `gateway serve --workers N`, started as `python -m gateway.serve.worker`.
Reads its WorkerSpec from stdin, serves on the shared port (SO_REUSEPORT) with uvloop, drains."""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
import sys
from dataclasses import dataclass

from .. import logs
from ..config import Config, metrics_dir
from ..metrics import Metrics
from .server import install_uvloop, serve

log = logging.getLogger("gateway.worker")


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What the supervisor hands a worker: its validated config and where to listen."""

    config: Config
    host: str
    port: int
    supervisor_pid: int


def command() -> list[str]:
    """The command line that starts a worker (a fresh interpreter; see supervisor.py)."""
    return [sys.executable, "-m", "gateway.serve.worker"]


def main() -> int:
    """Serve one worker until SIGTERM/SIGINT; 0 after a clean drain, 1 if serving failed."""
    # A reload signal must not kill a worker that has not installed its handler yet.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # The spec comes from our own supervisor over a pipe, never from elsewhere.
    spec: WorkerSpec = pickle.load(sys.stdin.buffer)
    logs.configure(spec.config.logging.level)
    install_uvloop()
    metrics = Metrics(multiprocess_dir=metrics_dir())
    try:
        asyncio.run(
            serve(
                spec.config,
                spec.host,
                spec.port,
                reuse_port=True,
                metrics=metrics,
                parent_pid=spec.supervisor_pid,
            )
        )
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        log.exception(
            "worker failed", extra={"fields": {"pid": os.getpid(), "error": type(exc).__name__}}
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

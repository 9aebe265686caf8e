"""`gateway serve`: one process, or a supervisor of N worker processes sharing the port.
The supervisor restarts dead workers, forwards SIGTERM/SIGINT/SIGHUP and owns the metrics dir.

Rules:
- Workers are fresh interpreters (`python -m gateway.serve.worker`), not forks: prometheus-client
  picks its value storage when first imported, from PROMETHEUS_MULTIPROC_DIR, so that variable must
  be in a worker's environment before the worker starts. The supervisor makes the directory, sets
  the variable for its workers only, and removes the directory when it exits.
- A worker that dies is restarted at once; one that keeps dying within STABLE_AFTER_S of its
  start is restarted after an exponential backoff (BACKOFF_BASE_S doubling up to BACKOFF_MAX_S).
  Its live gauges are dropped from the metrics (mark_process_dead); its counters stay.
- SIGTERM and SIGINT are forwarded; workers drain within server.shutdown_grace_s, stragglers get
  SIGKILL after KILL_MARGIN_S more, and a second signal kills them at once. Exit 0 when every
  worker stopped cleanly.
- SIGHUP: the supervisor validates the file first (a bad one is refused here with one log line
  and never forwarded), keeps the new config for the workers it will start, then forwards SIGHUP.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from prometheus_client import multiprocess

from .. import logs
from ..config import METRICS_DIR_ENV, Config, ConfigError, environment, load
from ..routing import unpriced_models
from ..store.spill import adopt_orphans, spill_paths
from ..web.reload import prepare
from .server import install_uvloop, serve
from .worker import WorkerSpec, command

log = logging.getLogger("gateway.supervisor")

TICK_S = 0.05
STABLE_AFTER_S = 10.0
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
KILL_MARGIN_S = 5.0


def run(config: Config, host: str | None, port: int | None, workers: int) -> int:
    """Serve in this process (workers <= 1) or supervise `workers` processes; the exit code."""
    logs.configure(config.logging.level)
    for name in unpriced_models(config):
        log.warning("model %s is priced nowhere: its requests cost 0 (give prices)", name)
    host = host or config.server.host
    port = config.server.port if port is None else port
    adopt_orphans(config.database.spill_path, workers)  # rows an earlier layout left behind
    if workers <= 1:
        install_uvloop()
        asyncio.run(serve(config, host, port))
        return 0
    return Supervisor(config, host, port, workers).run()


def per_worker(config: Config, index: int, workers: int) -> Config:
    """Each worker gets its own spill file: a restarted worker N replays worker N's leftovers."""
    spill = spill_paths(config.database.spill_path, workers)[index]
    return replace(config, database=replace(config.database, spill_path=spill))


def check_port(host: str, port: int) -> None:
    """Raise OSError when something already listens on host:port (fail fast, not crash-loop)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)


@dataclass(slots=True)
class Slot:
    """One worker position: its current process, and its recent crash history."""

    index: int
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float = 0.0


def backoff_s(quick_deaths: int) -> float:
    """Delay before restarting a worker that died `quick_deaths` times in a row, early."""
    if quick_deaths <= 0:
        return 0.0
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2.0 ** (quick_deaths - 1))


class Supervisor:
    """Starts, watches and stops N workers (see the module rules)."""

    def __init__(
        self,
        config: Config,
        host: str,
        port: int,
        workers: int,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self.host = host
        self.port = port
        self.clock = clock
        self.slots = [Slot(i) for i in range(workers)]
        self.metrics_dir = ""
        self._signals: deque[int] = deque()

    def run(self) -> int:
        """Supervise until SIGTERM or SIGINT; the exit code."""
        if self.port == 0:
            log.error("--workers needs a fixed port: each worker would pick its own")
            return 2
        try:
            check_port(self.host, self.port)
        except OSError as exc:
            fields = {"host": self.host, "port": self.port, "error": str(exc)}
            log.error("cannot listen", extra={"fields": fields})
            return 1
        self.metrics_dir = tempfile.mkdtemp(prefix="gateway-metrics-")
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        try:
            fields = {"workers": len(self.slots), "pid": os.getpid(), "port": self.port}
            log.info("supervisor started", extra={"fields": fields})
            for slot in self.slots:
                self._start(slot)
            return self._stop(self._supervise())
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for slot in self.slots:  # only after an unexpected error here
                if slot.process is not None and slot.process.poll() is None:
                    slot.process.kill()
                    slot.process.wait()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals.append(signum)

    def _supervise(self) -> int:
        """Restart dead workers and forward SIGHUP until SIGTERM or SIGINT, which it returns."""
        while True:
            while self._signals:
                signum = self._signals.popleft()
                if signum != signal.SIGHUP:
                    return signum
                self._reload()
            now = self.clock()
            for slot in self.slots:
                if slot.process is not None and slot.process.poll() is not None:
                    self._died(slot, now)
                if slot.process is None and now >= slot.restart_at:
                    self._start(slot)
            time.sleep(TICK_S)

    def _start(self, slot: Slot) -> None:
        # The variable is set for the worker only, here; see the module rules for why.
        env = {**environment(), METRICS_DIR_ENV: self.metrics_dir}
        process = subprocess.Popen(command(), stdin=subprocess.PIPE, env=env)
        spec = WorkerSpec(
            per_worker(self.config, slot.index, len(self.slots)), self.host, self.port, os.getpid()
        )
        assert process.stdin is not None
        try:
            process.stdin.write(pickle.dumps(spec))
            process.stdin.close()
        except BrokenPipeError:
            pass  # it died at once; the next tick reaps it
        slot.process, slot.started_at = process, self.clock()
        log.info("worker started", extra={"fields": {"worker": slot.index, "pid": process.pid}})

    def _died(self, slot: Slot, now: float) -> None:
        process = slot.process
        assert process is not None
        uptime = now - slot.started_at
        slot.quick_deaths = slot.quick_deaths + 1 if uptime < STABLE_AFTER_S else 0
        delay = backoff_s(slot.quick_deaths)
        multiprocess.mark_process_dead(process.pid, self.metrics_dir)
        code = process.returncode
        fields = {
            "worker": slot.index,
            "pid": process.pid,
            "exit_code": code,
            "signal": signal.Signals(-code).name if code < 0 else None,
            "uptime_s": round(uptime, 3),
            "restart_in_s": delay,
            "crash_loop": slot.quick_deaths > 1,
        }
        log.warning("worker died, restarting", extra={"fields": fields})
        slot.process, slot.restart_at = None, now + delay

    def _reload(self) -> None:
        try:
            config, ignored = prepare(self.config, load(self.config.source))
        except ConfigError as error:
            log.error(
                "config reload refused, keeping the running config",
                extra={"fields": {"reason": str(error)}},
            )
            return
        self.config = config
        logging.getLogger().setLevel(config.logging.level.upper())
        pids = []
        for slot in self.slots:
            if slot.process is not None and slot.process.poll() is None:
                slot.process.send_signal(signal.SIGHUP)
                pids.append(slot.process.pid)
        fields = {"workers": pids, "ignored": ignored}
        log.info("config reload forwarded to workers", extra={"fields": fields})

    def _stop(self, signum: int) -> int:
        """Forward the stop signal, wait for the drain, kill stragglers; the exit code."""
        grace = self.config.server.shutdown_grace_s
        fields = {"signal": signal.Signals(signum).name, "grace_s": grace}
        log.info("stopping workers", extra={"fields": fields})
        running = [s.process for s in self.slots if s.process is not None]
        for process in running:
            if process.poll() is None:
                process.send_signal(signum)
        deadline = self.clock() + grace + KILL_MARGIN_S
        pending = list(running)
        while pending and self.clock() < deadline:
            if any(sig != signal.SIGHUP for sig in self._signals):
                log.warning("second stop signal: killing workers now")
                break
            self._signals.clear()
            pending = [p for p in pending if p.poll() is None]
            time.sleep(TICK_S)
        for process in pending:
            if process.poll() is None:
                log.warning(
                    "worker did not stop in time, killing", extra={"fields": {"pid": process.pid}}
                )
                process.kill()
            process.wait()
        for process in running:
            multiprocess.mark_process_dead(process.pid, self.metrics_dir)
        codes = {str(p.pid): p.returncode for p in running}
        clean = all(code == 0 for code in codes.values())
        log.info("supervisor stopped", extra={"fields": {"exit_codes": codes}})
        return 0 if clean else 1

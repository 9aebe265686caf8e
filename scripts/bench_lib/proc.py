"""Process plumbing for the bench: start pinned children, wait for them, stop them, read /proc.
Every child is registered in a Children list so the orchestrator can always stop what it started."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
# Placement on a machine with 2+ CPUs: the gateway alone on one, load tools and the mock on another.
GATEWAY_CPU, LOAD_CPU = 0, 1


def pin_prefix(cpu: int | None) -> list[str]:
    """`taskset -c <cpu>` when taskset exists and the machine has that CPU; else nothing."""
    if cpu is None or shutil.which("taskset") is None or (os.cpu_count() or 1) <= cpu:
        return []
    return ["taskset", "-c", str(cpu)]


def pin_cpus_prefix(count: int) -> list[str]:
    """`taskset -c 0-<count-1>` (the first `count` CPUs) when the machine has more than that;
    nothing when it has no more (all of them are used anyway) or taskset is missing."""
    if shutil.which("taskset") is None or (os.cpu_count() or 1) <= count:
        return []
    return ["taskset", "-c", f"0-{count - 1}"]


def unpin(pid: int) -> set[int]:
    """Let `pid` run on every CPU; returns its former CPU set (for `repin`)."""
    former = os.sched_getaffinity(pid)
    os.sched_setaffinity(pid, range(os.cpu_count() or 1))
    return former


def repin(pid: int, cpus: set[int]) -> None:
    os.sched_setaffinity(pid, cpus)


def process_tree(pid: int) -> list[int]:
    """`pid` and every live descendant (a supervisor and its workers), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone, or not ours to read
        parents.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += parents.get(current, [])
    return tree


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Children:
    """The processes this run started; stop_all() ends each of them, by its own pid."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(list(argv), **kwargs)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            with contextlib.suppress(Exception):  # keep stopping the others
                self.stop(proc)


def wait_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Return once 127.0.0.1:port accepts a connection; raise if the process dies first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout_s}s")


def cpu_times(pid: int) -> tuple[int, int]:
    """(utime, stime) of the whole process (all threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)


def tree_cpu_times(pids: Sequence[int]) -> tuple[int, int]:
    """(utime, stime) summed over several processes; one that has exited counts as 0."""
    user = system = 0
    for pid in pids:
        try:
            u, s = cpu_times(pid)
        except OSError:
            continue
        user, system = user + u, system + s
    return user, system


def cpu_ticks(pid: int) -> int:
    """utime + stime of the whole process (all threads), in clock ticks."""
    return sum(cpu_times(pid))


def cpu_busy_ticks(cpu: int) -> int:
    """Busy ticks of one CPU since boot, all processes (/proc/stat, less idle and iowait)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                values = [int(v) for v in line.split()[1:]]
                return sum(values) - values[3] - values[4]
    return 0


def status_kb(pid: int, name: str) -> int:
    """A `kB` line of /proc/<pid>/status, such as VmRSS or VmHWM."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (proc(5): clear_refs "5"); False when not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def tree_rss_kb(pids: Sequence[int]) -> int:
    """VmRSS summed over several processes (shared pages counted in each)."""
    total = 0
    for pid in pids:
        try:
            total += status_kb(pid, "VmRSS")
        except OSError:
            continue
    return total


class RssSampler:
    """Samples the VmRSS of some processes (summed) every `interval_s` in a thread; `peak_kb` is
    the highest seen."""

    def __init__(self, pids: Sequence[int], interval_s: float = 0.05) -> None:
        self.pids = list(pids)
        self.interval_s = interval_s
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            rss = tree_rss_kb(self.pids)
            if not rss:
                return  # all gone
            self.peak_kb = max(self.peak_kb, rss)
            if self._stop.wait(self.interval_s):
                return

"""Private redis-server processes for the Cluster and Sentinel tests: a 3-master Redis Cluster made
with `redis-cli --cluster create`, and a master + replica + 3 sentinels. Free 127.0.0.1 ports, a
temp dir, every wait bounded, and everything killed and removed at teardown."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from gateway.config.redis_url import parse_redis_url
from gateway.limits.redis import RedisLimiter
from gateway.redis_clients import open_redis
from tests.support.gateway import free_port

REDIS_SERVER = shutil.which("redis-server") or "redis-server"
REDIS_CLI = shutil.which("redis-cli") or "redis-cli"
START_TIMEOUT_S = 15.0
SERVICE = "gwmaster"


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = START_TIMEOUT_S) -> None:
    """Poll `check` every 50 ms until it is true; TimeoutError naming `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, RedisError):
            if check():
                return
        time.sleep(0.05)
    raise TimeoutError(f"{what}: not within {timeout_s}s")


def _accepts(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True


def info(port: int, section: str) -> dict[str, str]:
    """`INFO <section>` of the server on `port`, values as strings."""
    with Redis(port=port, socket_timeout=2, socket_connect_timeout=2) as client:
        return {k: str(v) for k, v in client.info(section).items()}


def _cluster_ok(port: int) -> bool:
    """Whether `CLUSTER INFO` on the node on `port` says `cluster_state:ok`."""
    with Redis(port=port, socket_timeout=2, socket_connect_timeout=2) as client:
        return str(client.cluster("INFO")["cluster_state"]) == "ok"


class RedisProcess:
    """One redis-server (or sentinel) with its own dir, no persistence; SIGKILLed at teardown."""

    def __init__(self, root: Path, *args: str, config: str | None = None) -> None:
        self.port = free_port()
        self.dir = root / str(self.port)
        self.dir.mkdir()
        self.args = list(args)
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [REDIS_SERVER]
        if self.config is not None:  # a sentinel rewrites its config file: one per process
            path = self.dir / "sentinel.conf"
            path.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n{self.config}")
            command += [str(path), "--sentinel"]
        else:
            command += ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
            command += ["--save", "", "--appendonly", "no", *self.args]
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(lambda: _accepts(self.port), f"redis on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        self.proc = None


class _Servers:
    """Processes under one temp dir, all killed and removed by destroy()."""

    def __init__(self, prefix: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.processes: list[RedisProcess] = []

    def spawn(self, *args: str, config: str | None = None) -> RedisProcess:
        process = RedisProcess(self.root, *args, config=config)
        self.processes.append(process)
        process.start()
        return process

    def destroy(self) -> None:
        for process in self.processes:
            process.kill()
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedisCluster(_Servers):
    """A Redis Cluster of `masters` primaries (and `replicas` replicas each) on free ports."""

    def __init__(self, masters: int = 3, replicas: int = 0) -> None:
        super().__init__("gw-redis-cluster-")
        self.masters = masters
        self.replicas = replicas

    @property
    def nodes(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", p.port) for p in self.processes]

    @property
    def url(self) -> str:
        """The gateway's `redis.url` for this cluster."""
        return "redis+cluster://" + ",".join(f"{h}:{p}" for h, p in self.nodes)

    def start(self) -> None:
        for _ in range(self.masters * (1 + self.replicas)):
            # The cluster bus gets its own free port: port + 10000 may be taken or past 65535.
            self.spawn(
                *("--cluster-enabled", "yes", "--cluster-port", str(free_port())),
                *("--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"),
            )
        subprocess.run(
            [
                *(REDIS_CLI, "--cluster", "create", *(f"{h}:{p}" for h, p in self.nodes)),
                *("--cluster-replicas", str(self.replicas), "--cluster-yes"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=START_TIMEOUT_S,
        )
        for _, port in self.nodes:
            wait_until(partial(_cluster_ok, port), f"cluster node {port} ok")

    def primary_ports(self) -> list[int]:
        return [p for _, p in self.nodes if info(p, "replication").get("role") == "master"]


class PrivateSentinels(_Servers):
    """A master, one replica of it, and 3 sentinels watching them as SERVICE."""

    def __init__(self) -> None:
        super().__init__("gw-redis-sentinel-")
        self.master: RedisProcess | None = None
        self.replica: RedisProcess | None = None
        self.sentinels: list[RedisProcess] = []

    @property
    def url(self) -> str:
        """The gateway's `redis.url`: the sentinels and the service they watch."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> None:
        no_delay = ("--repl-diskless-sync-delay", "0")  # the default waits 5 s for more replicas
        self.master = self.spawn(*no_delay)
        self.replica = self.spawn(*no_delay, "--replicaof", "127.0.0.1", str(self.master.port))
        replica = self.replica.port
        wait_until(
            lambda: info(replica, "replication").get("master_link_status") == "up",
            "replica in sync",
        )
        config = (
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
        )
        self.sentinels = [self.spawn(config=config) for _ in range(3)]
        for sentinel in self.sentinels:
            wait_until(
                partial(self._sees_replica, sentinel.port),
                f"sentinel {sentinel.port} sees the replica",
            )

    def _sees_replica(self, sentinel_port: int) -> bool:
        with Redis(port=sentinel_port, socket_timeout=2, socket_connect_timeout=2) as client:
            replicas = client.execute_command("SENTINEL", "REPLICAS", SERVICE)
        return bool(replicas)

    def master_port(self) -> int:
        """The port the first sentinel names as the master now."""
        with Redis(port=self.sentinels[0].port, socket_timeout=2) as client:
            _, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(port)

    def failover(self) -> None:
        """SENTINEL FAILOVER: promote the replica without waiting for the master to fail."""
        with Redis(port=self.sentinels[0].port, socket_timeout=5) as client:
            client.execute_command("SENTINEL", "FAILOVER", SERVICE)


@contextlib.asynccontextmanager
async def cluster_limiter(
    cluster: PrivateRedisCluster, **options: Any
) -> AsyncIterator[RedisLimiter]:
    """A RedisLimiter on `cluster` through the gateway's own client (redis+cluster://), under a
    fresh prefix; the client is closed afterwards (the keys go with the cluster)."""
    client = open_redis(parse_redis_url(cluster.url), timeout_s=5)
    try:
        yield RedisLimiter(client, prefix=f"test-{uuid.uuid4().hex}", **options)
    finally:
        await client.aclose()


def script_calls(limiter: RedisLimiter) -> list[str]:
    """Record the sha of every script call the limiter makes from now on."""
    calls: list[str] = []
    evalsha = limiter._pipeline.evalsha

    async def counting(
        sha: str, keys: Sequence[Any], args: Sequence[Any], linger_s: float = 0.0
    ) -> Any:
        calls.append(sha)
        return await evalsha(sha, keys, args, linger_s)

    limiter._pipeline.evalsha = counting  # type: ignore[method-assign]
    return calls

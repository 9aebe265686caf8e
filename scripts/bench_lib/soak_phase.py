"""`scripts/bench --soak`: bounded resources. The gateway's RSS with many streams whose clients
read nothing (and after they hang up), and idle connections closed by the server's idle timeout.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import yaml
from proc import GATEWAY_CPU, pin_prefix, status_kb
from stack import start_gateway

if TYPE_CHECKING:
    from run import Bench

UNREAD = 100  # streams whose client reads nothing
IDLE = 200  # connections that send nothing
IDLE_TIMEOUT_S = 2.0
STREAM_MODEL = "mock-c2000-d0-t0"  # 2,000 chunks, written as fast as the gateway takes them


def _config(config_path: Path, out: Path) -> Path:
    config = yaml.safe_load(config_path.read_text())
    config.setdefault("server", {})["idle_timeout_s"] = IDLE_TIMEOUT_S
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def _rss_mb(pid: int) -> float:
    return round(status_kb(pid, "VmRSS") / 1024, 1)


def _unread_stream(port: int, key: str) -> socket.socket:
    """A chat stream asked for, whose answer is never read."""
    body = orjson.dumps(
        {"model": STREAM_MODEL, "stream": True, "messages": [{"role": "user", "content": "go"}]}
    )
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # read nothing, hold little
    sock.sendall(head + body)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.2)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def soak_phase(bench: Bench, config_path: Path) -> dict[str, Any]:
    config = _config(config_path, bench.tmp / "gateway-soak.yaml")
    gw = start_gateway(
        bench.children, config, bench.tmp / "gateway-soak.log", pin_prefix(GATEWAY_CPU)
    )
    port = int(gw.base.rsplit(":", 1)[1])
    try:
        rss_idle = _rss_mb(gw.pid)
        streams = [_unread_stream(port, bench.key) for _ in range(UNREAD)]
        time.sleep(3.0)
        rss_unread = _rss_mb(gw.pid)
        for sock in streams:
            sock.close()
        time.sleep(2.0)
        rss_after = _rss_mb(gw.pid)
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(IDLE)]
        started = time.monotonic()
        time.sleep(IDLE_TIMEOUT_S + 1.5)
        closed = sum(_closed_by_server(sock) for sock in idle)
        waited = time.monotonic() - started
        for sock in idle:
            sock.close()
    finally:
        bench.children.stop(gw.proc)
    return {
        "unread_streams": UNREAD,
        "stream_model": STREAM_MODEL,
        "rss_idle_mb": rss_idle,
        "rss_with_unread_streams_mb": rss_unread,
        "rss_per_unread_stream_kb": round((rss_unread - rss_idle) * 1024 / UNREAD, 1),
        "rss_after_they_closed_mb": rss_after,
        "idle_connections": IDLE,
        "idle_timeout_s": IDLE_TIMEOUT_S,
        "idle_closed": closed,
        "idle_waited_s": round(waited, 1),
    }


def text(result: dict[str, Any]) -> str:
    r = result
    return "\n".join(
        [
            "",
            f"soak: {r['unread_streams']} streams ({r['stream_model']}) whose clients read"
            f" nothing: RSS {r['rss_idle_mb']} -> {r['rss_with_unread_streams_mb']} MB"
            f" ({r['rss_per_unread_stream_kb']} kB per stream), {r['rss_after_they_closed_mb']} MB"
            " after they hung up",
            f"soak: {r['idle_closed']} of {r['idle_connections']} idle connections closed by the"
            f" gateway within {r['idle_waited_s']} s (idle_timeout_s {r['idle_timeout_s']})",
        ]
    )

"""A small closed-loop HTTP/1.1 load generator for the bench: raw asyncio Protocols on uvloop.

Each of --concurrency workers keeps one keep-alive connection and sends the same POST again as
soon as the previous answer has ended, until --duration seconds have passed or --requests have
been started. It measures, per request, the latency (request written -> last byte) and the time
to first byte (request written -> first byte of the body: for a stream, the first event). Bodies
are checked: status 200, and a stream must hold its endpoint's last event (`data: [DONE]` for
chat, `response.completed`, `message_stop`; see endpoints.py). A raw Protocol costs a few
microseconds per read, so one core can drive a thousand concurrent streams.

Prints one JSON object on stdout (see `summary()`).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from collections import Counter
from typing import Any, cast
from urllib.parse import urlsplit

import orjson
from endpoints import ENDPOINTS, Endpoint

_perf = time.perf_counter


class RequestFailed(Exception):
    """A request that ended without a complete 200 answer."""


class Conn(asyncio.Protocol):
    """One keep-alive connection: one request at a time, response parsed incrementally."""

    def __init__(self, stream_end: bytes = b"") -> None:
        self.stream_end = stream_end
        self.keep = max(64, len(stream_end))
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.future: asyncio.Future[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.head = bytearray()
        self.in_body = False
        self.status = 0
        self.chunked = False
        self.remaining = 0  # content-length mode: body bytes still to come
        self.cbuf = bytearray()  # chunked mode: undecoded framing
        self.chunk_left = 0  # chunked mode: data bytes left in the current chunk (+2 for CRLF)
        self.tail = b""  # last bytes of the body, to find `stream_end` across reads
        self.ended = False  # `stream_end` seen in the body
        self.server_closes = False
        self.ttfb_at = 0.0
        self.reads = 0

    # -- asyncio callbacks ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(RequestFailed("connection closed" if exc is None else type(exc).__name__))

    def data_received(self, data: bytes) -> None:
        if self.future is None:
            return
        self.reads += 1
        if not self.in_body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.head[:end]).lower()
            data = bytes(self.head[end + 4 :])
            self.head.clear()
            self.in_body = True
            self.status = int(head[9:12])
            self.server_closes = b"\r\nconnection: close" in head
            self.chunked = b"\r\ntransfer-encoding: chunked" in head
            if not self.chunked:
                at = head.find(b"\r\ncontent-length:")
                if at < 0:
                    self._fail(RequestFailed("no content-length"))
                    return
                stop = head.find(b"\r\n", at + 2)
                self.remaining = int(head[at + 17 : stop if stop >= 0 else len(head)])
                if self.remaining == 0:
                    self.ttfb_at = _perf()
                    self._finish()
                    return
            if not data:
                return
        if not self.ttfb_at:
            self.ttfb_at = _perf()
        if self.chunked:
            self._chunked(data)
        else:
            self.remaining -= len(data)
            self._body(data)
            if self.remaining <= 0:
                self._finish()

    # -- parsing ----------------------------------------------------------------------------

    def _chunked(self, data: bytes) -> None:
        buf = self.cbuf
        buf += data
        pos = 0
        while True:
            if self.chunk_left:
                take = min(self.chunk_left, len(buf) - pos)
                payload = min(take, self.chunk_left - 2)  # the chunk's CRLF is not body
                if payload > 0:
                    self._body(bytes(buf[pos : pos + payload]))
                pos += take
                self.chunk_left -= take
                if self.chunk_left:
                    break
                continue
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
            if size == 0:
                if len(buf) - eol - 2 < 2:
                    break  # wait for the final CRLF
                del buf[:]
                self._finish()
                return
            pos = eol + 2
            self.chunk_left = size + 2
        del buf[:pos]

    def _body(self, data: bytes) -> None:
        seen = self.tail + data
        if not self.ended and self.stream_end in seen:
            self.ended = True
        self.tail = seen[-self.keep :]

    # -- request ----------------------------------------------------------------------------

    def request(self, raw: bytes, timeout_s: float) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        self.future = loop.create_future()
        self.in_body, self.status, self.chunked, self.remaining = False, 0, False, 0
        self.cbuf.clear()
        self.head.clear()
        self.chunk_left, self.tail, self.ttfb_at, self.reads = 0, b"", 0.0, 0
        self.ended = False
        self.timer = loop.call_later(timeout_s, self._fail, RequestFailed("timeout"))
        assert self.transport is not None
        self.transport.write(raw)
        return self.future

    def _finish(self) -> None:
        future, self.future = self.future, None
        if self.timer is not None:
            self.timer.cancel()
        if future is not None and not future.done():
            future.set_result(None)

    def _fail(self, exc: Exception) -> None:
        future, self.future = self.future, None
        if self.timer is not None:
            self.timer.cancel()
        if future is not None and not future.done():
            future.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def build_request(url: str, headers: list[tuple[str, str]], body: bytes) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [
        f"POST {parts.path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Accept: */*",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers),
    ]
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def run_load(
    url: str,
    key: str | None,
    endpoint: Endpoint,
    model: str,
    stream: bool,
    concurrency: int,
    duration_s: float,
    max_requests: int,
    timeout_s: float,
    ramp_s: float = 0.0,
) -> dict[str, Any]:
    host, port, raw = build_request(url, endpoint.headers(key), endpoint.body(model, stream))
    stream_end = endpoint.stream_end if stream else b""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    ttfbs: list[float] = []
    reads: list[int] = []
    errors: Counter[str] = Counter()
    started = 0
    start = _perf()
    deadline = start + duration_s

    async def connect() -> Conn:
        _, conn = await loop.create_connection(lambda: Conn(stream_end), host, port)
        return conn

    async def worker(index: int) -> None:
        nonlocal started
        conn: Conn | None = None
        if ramp_s > 0:  # spread the first requests so that equal streams are not in lockstep
            await asyncio.sleep(ramp_s * index / concurrency)
        while _perf() < deadline and (not max_requests or started < max_requests):
            started += 1
            try:
                if conn is None or conn.closed:
                    conn = await asyncio.wait_for(connect(), timeout_s)
                current = conn
                t0 = _perf()
                await current.request(raw, timeout_s)
                t1 = _perf()
            except (OSError, TimeoutError, RequestFailed) as exc:
                errors[str(exc) or type(exc).__name__] += 1
                if conn is not None:
                    conn.close()
                    conn = None
                await asyncio.sleep(0.01)  # a refused connect must not spin
                continue
            if current.status != 200:
                errors[f"http_{current.status}"] += 1
            elif stream and not current.ended:
                errors["stream cut short"] += 1
            else:
                latencies.append(t1 - t0)
                ttfbs.append(current.ttfb_at - t0)
                reads.append(current.reads)
            if current.server_closes:
                current.close()
                conn = None
        if conn is not None:
            conn.close()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = _perf() - start
    return summary(latencies, ttfbs, reads, errors, elapsed, concurrency)


def summary(
    latencies: list[float],
    ttfbs: list[float],
    reads: list[int],
    errors: Counter[str],
    elapsed: float,
    concurrency: int,
) -> dict[str, Any]:
    """The JSON the orchestrator reads: counts, rates and percentiles in milliseconds."""

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 3)

    return {
        "tool": "loadgen",
        "concurrency": concurrency,
        "completed": len(latencies),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "elapsed_s": round(elapsed, 3),
        "rps": round(len(latencies) / elapsed, 1) if elapsed > 0 else 0.0,
        "latency_ms": {
            "p50": ms(quantile(latencies, 0.5)),
            "p99": ms(quantile(latencies, 0.99)),
            "mean": ms(sum(latencies) / len(latencies)) if latencies else None,
        },
        "ttfb_ms": {"p50": ms(quantile(ttfbs, 0.5)), "p99": ms(quantile(ttfbs, 0.99))},
        "reads_per_response": round(sum(reads) / len(reads), 2) if reads else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="http://host:port/v1/chat/completions")
    parser.add_argument("--endpoint", choices=sorted(ENDPOINTS), default="chat")
    parser.add_argument("--key", help="the API key (sent as the endpoint sends it)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load")
    parser.add_argument("--requests", type=int, default=0, help="stop after this many (0: none)")
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    parser.add_argument("--ramp", type=float, default=0.0, help="spread worker starts (s)")
    args = parser.parse_args()
    coro = run_load(
        args.url,
        args.key,
        ENDPOINTS[args.endpoint],
        args.model,
        args.stream,
        args.concurrency,
        args.duration,
        args.requests,
        args.timeout,
        args.ramp,
    )
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(coro)
    else:
        result = uvloop.run(coro)
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()

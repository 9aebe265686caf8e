"""gateway/logs.py: whole JSON lines, batched per event-loop turn, never stranded."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Iterator

import orjson
import pytest

from gateway import logs


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    try:
        yield read_fd, write_fd
    finally:
        os.close(read_fd)
        os.close(write_fd)


def _drain(fd: int) -> bytes:
    try:
        return os.read(fd, 1 << 20)
    except BlockingIOError:
        return b""


def test_lines_of_one_turn_go_out_together_at_its_end(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    sink = logs.LineSink(write_fd)

    async def turn() -> tuple[bytes, bytes]:
        for i in range(3):
            sink.write(b'{"n":%d}\n' % i)
        during = _drain(read_fd)
        await asyncio.sleep(0)
        return during, _drain(read_fd)

    during, after = asyncio.run(turn())
    assert during == b""
    assert after == b'{"n":0}\n{"n":1}\n{"n":2}\n'


def test_outside_a_loop_a_line_is_written_at_once(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    sink = logs.LineSink(write_fd)
    sink.write(b"one\n")
    assert _drain(read_fd) == b"one\n"


def test_a_flush_due_on_a_loop_that_ended_does_not_strand_later_lines(
    pipe: tuple[int, int],
) -> None:
    read_fd, write_fd = pipe
    sink = logs.LineSink(write_fd)
    loop = asyncio.new_event_loop()

    def last_callback() -> None:
        loop.stop()  # the loop ends with this turn: the flush below is never run
        sink.write(b"a\n")

    loop.call_soon(last_callback)
    loop.run_forever()
    loop.close()
    assert _drain(read_fd) == b""

    async def second() -> bytes:
        sink.write(b"b\n")
        await asyncio.sleep(0)
        return _drain(read_fd)

    assert asyncio.run(second()) == b"a\nb\n"


def test_a_request_line_is_one_json_object(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    sink = logs.LineSink(write_fd)
    logger = logging.getLogger("gateway.requests.test")
    saved = logs._SINK
    logs._SINK = sink
    try:
        logs.line(logger, "request", {"request_id": "r1", "prompt_tokens": 3})
    finally:
        logs._SINK = saved
    record = orjson.loads(_drain(read_fd))
    assert record["msg"] == "request" and record["logger"] == "gateway.requests.test"
    assert record["level"] == "info" and record["request_id"] == "r1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["ts"])


def test_without_configure_a_line_is_an_ordinary_record(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway.requests.test")
    logger = logging.getLogger("gateway.requests.test")
    assert logs._SINK is None
    logs.line(logger, "request", {"request_id": "r2"})
    [record] = [r for r in caplog.records if r.name == "gateway.requests.test"]
    assert record.getMessage() == "request"
    assert record.fields == {"request_id": "r2"}  # type: ignore[attr-defined]


def test_request_lines_linger_for_company_and_keep_their_order(
    pipe: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    read_fd, write_fd = pipe
    monkeypatch.setattr(logs.LineSink, "LINGER_S", 0.05)
    sink = logs.LineSink(write_fd)

    async def run() -> list[bytes]:
        seen = []
        sink.write(b"r1\n", linger=True)
        await asyncio.sleep(0)
        sink.write(b"r2\n", linger=True)  # a later turn, as at one request at a time
        await asyncio.sleep(0)
        seen.append(_drain(read_fd))  # nothing yet: both wait for company
        await asyncio.sleep(0.2)
        seen.append(_drain(read_fd))  # the linger ended: one write with both
        sink.write(b"r3\n", linger=True)
        sink.write(b"warning\n")  # an ordinary line takes the lingering one with it, first
        await asyncio.sleep(0)
        seen.append(_drain(read_fd))
        return seen

    assert asyncio.run(run()) == [b"", b"r1\nr2\n", b"r3\nwarning\n"]

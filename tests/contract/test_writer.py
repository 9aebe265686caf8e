"""Contract tests for the persistence Writer over both stores (SQLite file, fresh PostgreSQL
database): order, flush, read-your-writes, outage retries, overflow spill, replay after close."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.store import (
    MessageRow,
    RequestLogRow,
    Session,
    Store,
    StoreUnavailable,
    WriteItem,
    Writer,
)
from gateway.store.spill import adopt_orphans, spill_paths
from gateway.store.writer import decode_item, encode_item

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
async def store(store: Store) -> Store:
    """The contract `store` (each backend in turn, migrated) with session s1 of u1."""
    await store.create_session(Session("s1", "u1", "t", None, 0, 0, "active", T0, T0))
    return store


class GatedStore:
    """Delegates write_batch once `gate` is set; records every committed batch."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.gate.set()
        self.batches: list[list[WriteItem]] = []

    async def write_batch(self, items: Sequence[WriteItem]) -> None:
        await self.gate.wait()
        await self.inner.write_batch(items)
        self.batches.append(list(items))


class FlakyStore(GatedStore):
    """Raises StoreUnavailable for the first `failures` batches, then recovers."""

    def __init__(self, inner: Store, failures: int) -> None:
        super().__init__(inner)
        self.failures = failures

    async def write_batch(self, items: Sequence[WriteItem]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise StoreUnavailable("injected outage")
        await super().write_batch(items)


def msg(i: int, session_id: str = "s1") -> MessageRow:
    return MessageRow(
        f"m{i:05d}", session_id, "user", f"hello {i}", 1, "gpt-x", T0 + timedelta(milliseconds=i)
    )


def log(i: int) -> RequestLogRow:
    return RequestLogRow(
        f"r{i:05d}",
        "u1",
        None,
        "gpt-x",
        "openai",
        "gpt-x",
        False,
        "ok",
        200,
        1,
        1,
        False,
        Decimal("0.000000001"),
        5,
        None,
        None,
        1,
        None,
        T0 + timedelta(milliseconds=i),
    )


def rows(n: int) -> list[WriteItem]:
    """n rows alternating messages of s1 and request logs."""
    return [msg(i) if i % 2 == 0 else log(i) for i in range(n)]


async def stored_message_ids(store: Store) -> list[str]:
    page = await store.list_messages("u1", "s1", 100_000, None)
    assert page is not None
    return [m.message_id for m in page[0]]


def expected_ids(items: Sequence[WriteItem]) -> list[str]:
    return [i.message_id for i in items if isinstance(i, MessageRow)]


def make_writer(store: Store | GatedStore, spill: Path, **kw: object) -> Writer:
    options: dict[str, object] = {
        "batch_size": 10,
        "flush_interval_s": 0.005,
        "retry_interval_s": 0.01,
        "spill_path": str(spill),
    }
    options.update(kw)
    return Writer(store, **options)  # type: ignore[arg-type]


def start_writer(
    store: Store | GatedStore, spill: Path, items: Sequence[WriteItem], **kw: object
) -> Writer:
    """A started writer (make_writer's options and `kw`) that has been handed `items` in order."""
    writer = make_writer(store, spill, **kw)
    writer.start()
    for item in items:
        writer.submit(item)
    return writer


async def assert_all_written_once(store: Store, items: Sequence[WriteItem]) -> None:
    assert await store.count_request_logs() == sum(isinstance(i, RequestLogRow) for i in items)
    assert await stored_message_ids(store) == expected_ids(items)
    session = await store.get_session("u1", "s1")
    assert session is not None
    assert session.message_count == len(expected_ids(items))


def test_spill_lines_round_trip() -> None:
    for item in (msg(1), log(2)):
        assert decode_item(encode_item(item)) == item


async def test_batches_in_submit_order(store: Store, tmp_path: Path) -> None:
    gated = GatedStore(store)
    depths: list[int] = []
    items = rows(45)
    writer = start_writer(gated, tmp_path / "spill", items, on_depth=depths.append)
    assert writer.depth == 45
    assert await writer.flush(10)
    assert writer.depth == 0 and depths[-1] == 0
    assert all(1 <= len(b) <= 10 for b in gated.batches)
    assert [i for b in gated.batches for i in b] == items
    await assert_all_written_once(store, items)
    await writer.close(5)
    assert not (tmp_path / "spill").exists()


async def test_flush_times_out_while_blocked(store: Store, tmp_path: Path) -> None:
    gated = GatedStore(store)
    gated.gate.clear()
    writer = make_writer(gated, tmp_path / "spill")
    writer.start()
    writer.submit(log(1))
    assert not await writer.flush(0.05)
    assert writer.depth == 1
    gated.gate.set()
    assert await writer.flush(5)
    assert await store.count_request_logs() == 1
    await writer.close(5)


async def test_wait_session_is_read_your_writes(store: Store, tmp_path: Path) -> None:
    gated = GatedStore(store)
    gated.gate.clear()
    writer = make_writer(gated, tmp_path / "spill")
    writer.start()
    assert not writer.pending_for_session("s1")
    assert await writer.wait_session("s1", 0.01)
    writer.submit(msg(1))
    writer.submit(log(2))
    assert writer.pending_for_session("s1")
    assert not writer.pending_for_session("other")
    assert await writer.wait_session("other", 0.01)
    assert not await writer.wait_session("s1", 0.05)
    gated.gate.set()
    assert await writer.wait_session("s1", 5)
    assert not writer.pending_for_session("s1")
    assert await stored_message_ids(store) == ["m00001"]
    await writer.close(5)


async def test_outage_retries_and_writes_every_row_once(store: Store, tmp_path: Path) -> None:
    flaky = FlakyStore(store, failures=4)
    failures: list[int] = []
    items = rows(60)
    writer = start_writer(flaky, tmp_path / "spill", items, on_failure=lambda: failures.append(1))
    assert await writer.flush(10)
    assert len(failures) == 4
    assert [i for b in flaky.batches for i in b] == items
    await assert_all_written_once(store, items)
    await writer.close(5)


async def test_overflow_spills_and_keeps_order(store: Store, tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    gated = GatedStore(store)
    gated.gate.clear()
    items = rows(200)
    writer = start_writer(gated, spill, items, batch_size=5, max_queue=20)
    await asyncio.sleep(0.02)
    assert writer.depth == 200
    assert spill.exists()
    # Memory holds at most max_queue rows; the rest (minus the in-flight batch) is on disk.
    assert len(spill.read_bytes().splitlines()) >= 200 - 20 - 5
    gated.gate.set()
    assert await writer.flush(20)
    assert [i for b in gated.batches for i in b] == items
    await assert_all_written_once(store, items)
    assert not spill.exists()
    await writer.close(5)


async def test_close_saves_unwritten_rows_and_next_writer_replays_once(
    store: Store, tmp_path: Path
) -> None:
    spill = tmp_path / "spill"
    down = FlakyStore(store, failures=10**9)
    items = rows(30)
    writer = start_writer(down, spill, items, batch_size=7, max_queue=10)
    await asyncio.sleep(0.05)  # some retries happen, some rows spill
    await writer.close(0.1)
    assert writer.depth == 30
    assert len(spill.read_bytes().splitlines()) == 30
    writer.submit(log(999))  # after close: straight to the spill file, not lost
    items.append(log(999))
    assert await store.count_request_logs() == 0
    copy = tmp_path / "spill.copy"
    shutil.copy(spill, copy)

    again = make_writer(store, spill)
    assert again.depth == 31 and again.pending_for_session("s1")
    again.start()
    assert await again.flush(10)
    assert not again.pending_for_session("s1")
    await again.close(5)
    assert not spill.exists()
    await assert_all_written_once(store, items)

    # Replaying the same file a second time writes nothing twice.
    shutil.copy(copy, spill)
    third = make_writer(store, spill)
    third.start()
    assert await third.wait_session("s1", 10)
    await third.close(5)
    await assert_all_written_once(store, items)


async def test_close_mid_outage_with_spilled_rows_keeps_order(store: Store, tmp_path: Path) -> None:
    """Rows in flight, on disk and in memory at close come back in submit order."""
    spill = tmp_path / "spill"
    down = FlakyStore(store, failures=10**9)
    items = rows(5)
    writer = start_writer(down, spill, items, batch_size=4, max_queue=6)
    await asyncio.sleep(0.03)  # the worker holds a batch of 4 in flight
    more = rows(40)[5:]
    for item in more:
        writer.submit(item)
    items += more
    await writer.close(0.05)
    lines = spill.read_bytes().splitlines()
    assert [decode_item(line) for line in lines] == items

    again = make_writer(store, spill)
    again.start()
    assert await again.flush(10)
    await again.close(5)
    await assert_all_written_once(store, items)


async def test_torn_spill_line_is_dropped(store: Store, tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    items = rows(3)
    spill.write_bytes(b"".join(encode_item(i) for i in items) + b'{"k": "msg", "v": {"mess')
    writer = make_writer(store, spill)
    writer.start()
    assert await writer.flush(10)
    writer.submit(log(50))
    assert await writer.flush(10)
    await writer.close(5)
    await assert_all_written_once(store, [*items, log(50)])
    assert not os.path.exists(spill)


async def test_submit_is_cheap_and_never_raises(store: Store, tmp_path: Path) -> None:
    gated = GatedStore(store)
    gated.gate.clear()
    writer = make_writer(gated, tmp_path / "spill", batch_size=100, max_queue=1000)
    writer.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    items = rows(5000)
    for item in items:
        writer.submit(item)
    assert loop.time() - started < 2.0
    gated.gate.set()
    assert await writer.flush(30)
    await writer.close(5)
    await assert_all_written_once(store, items)


class PickyStore(GatedStore):
    """Refuses (not an outage) any batch holding the request log `bad_id`, as a database refuses
    a row it cannot store."""

    def __init__(self, inner: Store, bad_id: str) -> None:
        super().__init__(inner)
        self.bad_id = bad_id

    async def write_batch(self, items: Sequence[WriteItem]) -> None:
        if any(isinstance(i, RequestLogRow) and i.request_id == self.bad_id for i in items):
            raise ValueError("value out of range for type integer")
        await super().write_batch(items)


async def test_a_refused_row_is_set_aside_and_the_rest_written(
    store: Store, tmp_path: Path
) -> None:
    items = rows(30)
    picky = PickyStore(store, bad_id=log(7).request_id)
    writer = start_writer(picky, tmp_path / "spill.jsonl", items)
    assert await writer.flush(10), "one bad row must not stop persistence"
    await writer.close()
    rest = [i for i in items if not (isinstance(i, RequestLogRow) and i.request_id == "r00007")]
    assert await store.count_request_logs() == sum(isinstance(i, RequestLogRow) for i in rest)
    assert await stored_message_ids(store) == expected_ids(items)
    rejected = (tmp_path / "spill.jsonl.rejected").read_bytes().splitlines(keepends=True)
    assert [decode_item(line) for line in rejected] == [log(7)]


async def test_rows_left_by_another_worker_layout_are_adopted_and_replayed(
    store: Store, tmp_path: Path
) -> None:
    base = tmp_path / "spill.jsonl"
    items = rows(12)
    # A run with three workers left rows in .0 and .2 (the last one torn by a crash).
    (tmp_path / "spill.jsonl.0").write_bytes(b"".join(encode_item(i) for i in items[:5]))
    torn = b"".join(encode_item(i) for i in items[5:]) + b'{"k":"log","v":{"req'
    (tmp_path / "spill.jsonl.2").write_bytes(torn)
    assert adopt_orphans(str(base), workers=1) == 12
    assert sorted(p.name for p in tmp_path.glob("spill.jsonl*")) == ["spill.jsonl"]
    writer = make_writer(store, base)
    writer.start()
    assert await writer.flush(10)
    await writer.close()
    await assert_all_written_once(store, items)
    assert spill_paths(str(base), 2) == [f"{base}.0", f"{base}.1"]

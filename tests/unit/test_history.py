"""The session history window: oldest dropped first, request system messages kept first."""

from datetime import UTC, datetime

from gateway.store import Message
from gateway.store.history import storable, with_history

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def history(*pairs: tuple[str, int]) -> list[Message]:
    return [
        Message(f"m{i}", "s", "user" if i % 2 == 0 else "assistant", text, tokens, None, NOW)
        for i, (text, tokens) in enumerate(pairs)
    ]


def test_system_message_stays_first_and_history_goes_between():
    out = with_history(
        history(("a", 1), ("b", 1)),
        [{"role": "system", "content": "sys"}, {"role": "user", "content": "new"}],
        max_tokens=100,
        max_messages=10,
    )
    assert [m["content"] for m in out] == ["sys", "a", "b", "new"]


def test_message_limit_drops_oldest_first():
    out = with_history(
        history(("a", 1), ("b", 1), ("c", 1)),
        [{"role": "user", "content": "n"}],
        max_tokens=100,
        max_messages=2,
    )
    assert [m["content"] for m in out] == ["b", "c", "n"]


def test_token_limit_drops_oldest_first_and_keeps_contiguous_window():
    out = with_history(
        history(("a", 5), ("b", 50), ("c", 30)),
        [{"role": "user", "content": "n"}],
        max_tokens=60,
        max_messages=10,
    )
    assert [m["content"] for m in out] == ["c", "n"]


def test_storable_skips_instructions():
    msgs = [
        {"role": "system", "content": "s"},
        {"role": "developer", "content": "d"},
        {"role": "user", "content": "u"},
    ]
    assert storable(msgs) == [{"role": "user", "content": "u"}]

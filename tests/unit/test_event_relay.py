"""PassthroughRelay: upstream event bytes reach the client unchanged, whole events only, so a
stream broken inside an event leaves no half event in front of the error event."""

from __future__ import annotations

import pytest

from gateway.proxy.event_relay import PassthroughRelay
from gateway.translate.messages.usage import MessagesStreamReader
from tests.support.fake_anthropic import Script, stream_bytes

STREAM = stream_bytes("claude-x", Script())


def relay() -> PassthroughRelay:
    return PassthroughRelay(MessagesStreamReader(), lambda error, events: b"", 0)


@pytest.mark.parametrize("size", [1, 2, 7, 64, len(STREAM)])
def test_the_bytes_are_unchanged_and_leave_as_whole_events(size: int) -> None:
    r = relay()
    out = [r.outgoing(STREAM[i : i + size]) for i in range(0, len(STREAM), size)]
    out.append(r.tail())
    assert b"".join(out) == STREAM
    assert all(piece == b"" or piece.endswith(b"\n\n") for piece in out)
    assert r.complete and r.reader.text == "Hello from Claude"


def test_a_cut_event_is_held_back_and_an_unterminated_last_one_flushed() -> None:
    r = relay()
    cut = STREAM.index(b" from") + 2  # inside the second text delta
    held = STREAM[: STREAM.rindex(b"\n\n", 0, cut) + 2]
    last = STREAM.rindex(b"event: message_stop")
    assert r.outgoing(STREAM[:cut]) == held
    assert r.outgoing(STREAM[cut:-2]) == STREAM[len(held) : last]  # all but the last blank line
    assert not r.complete
    assert r.tail() == STREAM[last:-2] and r.complete

"""The vertex token cache: one refresh (in a worker thread) for every concurrent waiter, a token
refreshed REFRESH_MARGIN_S before it expires, a failed refresh tried again by the next request.
The clock is injected; google-auth's refresh is replaced by a counting stand-in."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from gateway.adapters.google_token import REFRESH_MARGIN_S, GoogleToken
from gateway.errors import ProviderError

EXPIRY = 10_000.0


class Refresher:
    def __init__(self) -> None:
        self.calls = 0
        self.threads: set[int] = set()
        self.fail = False

    def __call__(self) -> tuple[str, float]:
        self.calls += 1
        self.threads.add(threading.get_ident())
        time.sleep(0.02)  # blocking, as google-auth's HTTP call is
        if self.fail:
            raise ProviderError("token endpoint said no")
        return f"token-{self.calls}", EXPIRY


def _token(now: list[float]) -> tuple[GoogleToken, Refresher]:
    token = GoogleToken("gcp", "", clock=lambda: now[0])
    refresher = Refresher()
    token._refresh = refresher  # type: ignore[method-assign]
    return token, refresher


async def test_concurrent_requests_share_one_refresh_off_the_loop():
    token, refresher = _token([0.0])
    tokens = await asyncio.gather(*(token.token() for _ in range(20)))
    assert tokens == ["token-1"] * 20 and refresher.calls == 1
    assert threading.get_ident() not in refresher.threads


async def test_refreshed_only_within_the_margin_before_expiry():
    now = [0.0]
    token, refresher = _token(now)
    assert await token.token() == "token-1"
    now[0] = EXPIRY - REFRESH_MARGIN_S - 1
    assert await token.token() == "token-1" and refresher.calls == 1
    now[0] = EXPIRY - REFRESH_MARGIN_S + 1
    assert await token.token() == "token-2" and refresher.calls == 2


async def test_a_failed_refresh_fails_its_waiters_and_the_next_request_retries():
    token, refresher = _token([0.0])
    refresher.fail = True
    results = await asyncio.gather(token.token(), token.token(), return_exceptions=True)
    assert all(isinstance(r, ProviderError) for r in results) and refresher.calls == 1
    refresher.fail = False
    assert await token.token() == "token-2"


async def test_a_cancelled_waiter_does_not_cancel_the_refresh_of_the_others():
    token, refresher = _token([0.0])
    first = asyncio.ensure_future(token.token())
    second = asyncio.ensure_future(token.token())
    await asyncio.sleep(0)
    first.cancel()
    assert await second == "token-1" and refresher.calls == 1
    with pytest.raises(asyncio.CancelledError):
        await first

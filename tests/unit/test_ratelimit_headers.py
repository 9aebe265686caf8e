"""OpenAI's rate-limit headers from a Decision: duration strings, omitted unlimited quotas."""

from __future__ import annotations

import pytest

from gateway.limits import Decision, Limits
from gateway.web.ratelimit_headers import duration, ratelimit_headers


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (-1, "0s"),
        (0.0001, "1ms"),
        (0.12, "120ms"),
        (0.9996, "1s"),  # rounds to a whole second, never `1000ms`
        (1, "1s"),
        (1.5, "1.5s"),
        (6, "6s"),
        (59.9996, "1m0s"),
        (360, "6m0s"),
        (7384.5, "2h3m4.5s"),
        (86400, "24h0m0s"),
    ],
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def decision(limits: Limits, allowed: bool = True, retry_after_s: float = 0.0) -> Decision:
    return Decision(
        allowed=allowed,
        refused_by=None if allowed else "rpm",
        limits=limits,
        requests_remaining=0 if limits.rpm == 0 else 4,
        requests_reset_s=12.0 if limits.rpm else 0.0,
        tokens_used=14,
        tokens_remaining=max(0, limits.tpd - 14),
        tokens_reset_s=3600.0,
        retry_after_s=retry_after_s,
    )


def test_all_six_headers() -> None:
    assert ratelimit_headers(decision(Limits(rpm=5, tpd=100))) == {
        "x-ratelimit-limit-requests": "5",
        "x-ratelimit-remaining-requests": "4",
        "x-ratelimit-reset-requests": "12s",
        "x-ratelimit-limit-tokens": "100",
        "x-ratelimit-remaining-tokens": "86",
        "x-ratelimit-reset-tokens": "1h0m0s",
    }


def test_unlimited_quota_omits_its_three_headers() -> None:
    assert set(ratelimit_headers(decision(Limits(rpm=0, tpd=100)))) == {
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
    }
    assert set(ratelimit_headers(decision(Limits(rpm=5, tpd=0)))) == {
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
    }
    assert ratelimit_headers(decision(Limits(rpm=0, tpd=0))) == {}


@pytest.mark.parametrize(("retry_after_s", "header"), [(0.0, "1"), (0.2, "1"), (11.2, "12")])
def test_retry_after_is_whole_seconds_at_least_one(retry_after_s: float, header: str) -> None:
    refused = decision(Limits(rpm=5, tpd=0), allowed=False, retry_after_s=retry_after_s)
    assert ratelimit_headers(refused)["Retry-After"] == header

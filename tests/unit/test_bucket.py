"""Unit tests for gateway/limits/bucket.py: the pure quota arithmetic, with an injected clock.
Numbers are computed by hand in the comments."""

from __future__ import annotations

import pytest

from gateway.limits import bucket
from gateway.limits.base import Limits
from gateway.limits.bucket import BucketState

# 2023-11-14 22:13:20 UTC: 80000 s into the day, 6400 s before midnight.
NOW = 1_700_000_000.0


def test_new_bucket_starts_full() -> None:
    assert bucket.refill(None, 10, NOW) == BucketState(10.0, NOW)


def test_refill_is_continuous_and_capped() -> None:
    empty = BucketState(0.0, NOW)
    assert bucket.refill(empty, 10, NOW + 3).tokens == 0.5  # 3 s * 10/60
    assert bucket.refill(empty, 10, NOW + 6).tokens == 1.0
    assert bucket.refill(empty, 10, NOW + 600).tokens == 10.0
    assert bucket.refill(empty, 10, NOW + 6).updated_at == NOW + 6


def test_refill_caps_at_a_lowered_capacity() -> None:
    assert bucket.refill(BucketState(50.0, NOW), 10, NOW).tokens == 10.0


def test_clock_running_backwards_adds_nothing_and_keeps_timestamp() -> None:
    state = bucket.refill(BucketState(2.0, NOW), 10, NOW - 30)
    assert state == BucketState(2.0, NOW)


def test_take_consumes_one_token() -> None:
    taken, state = bucket.take(None, 3, NOW)
    assert taken and state == BucketState(2.0, NOW)


def test_take_refuses_below_one_token_and_keeps_the_refill() -> None:
    taken, state = bucket.take(BucketState(0.0, NOW), 10, NOW + 3)
    assert not taken and state == BucketState(0.5, NOW + 3)


def test_take_tolerates_float_error_at_exactly_retry_after() -> None:
    # rpm=7: one token takes 60/7 s, which is not exact in binary.
    # NOW + wait rounds to ~2.4e-7 s; the tolerance absorbs that at any rpm.
    for rpm in (7, 13, 6000, 60000):
        wait = bucket.seconds_until_token(0.0, rpm)
        taken, state = bucket.take(BucketState(0.0, NOW), rpm, NOW + wait)
        assert taken and 0.0 <= state.tokens < bucket.slack(rpm)


def test_tolerance_is_a_microsecond_of_refill() -> None:
    assert not bucket.has_token(1 - 2 * bucket.slack(10), 10)
    assert bucket.has_token(1 - bucket.slack(10), 10)


def test_whole_tokens() -> None:
    assert bucket.whole_tokens(2.7, 10) == 2
    assert bucket.whole_tokens(0.9999999999999, 10) == 1
    assert bucket.whole_tokens(0.0, 10) == 0


def test_seconds_until_full_and_until_token() -> None:
    assert bucket.seconds_until_full(9.0, 10) == 6.0
    assert bucket.seconds_until_full(0.5, 10) == 57.0
    assert bucket.seconds_until_full(10.0, 10) == 0.0
    assert bucket.seconds_until_full(0.0, 0) == 0.0  # unlimited
    assert bucket.seconds_until_token(0.5, 10) == 3.0
    assert bucket.seconds_until_token(1.0, 10) == 0.0
    assert bucket.seconds_until_token(0.0, 0) == 0.0


def test_day_key_and_midnight() -> None:
    assert bucket.day_key(NOW) == "20231114"
    assert bucket.seconds_until_midnight(NOW) == 6400.0
    assert bucket.seconds_until_midnight(NOW + 0.25) == 6399.75
    midnight = NOW + 6400
    assert bucket.day_key(midnight - 0.001) == "20231114"
    assert bucket.day_key(midnight) == "20231115"
    assert bucket.seconds_until_midnight(midnight) == 86400.0


@pytest.mark.parametrize(
    ("limits", "tokens", "used", "expected"),
    [
        (Limits(rpm=10, tpd=100), 5.0, 0, None),
        (Limits(rpm=10, tpd=100), 0.5, 0, "rpm"),
        (Limits(rpm=10, tpd=100), 5.0, 100, "tpd"),
        (Limits(rpm=10, tpd=100), 0.0, 150, "tpd"),  # tpd is checked first
        (Limits(rpm=0, tpd=100), 0.0, 99, None),
        (Limits(rpm=10, tpd=0), 5.0, 10**9, None),
        (Limits(rpm=0, tpd=0), 0.0, 10**9, None),
    ],
)
def test_refusal_rule(limits: Limits, tokens: float, used: int, expected: str | None) -> None:
    assert bucket.refusal(limits, tokens, used) == expected


def test_evaluate_admits_and_returns_the_state_to_store() -> None:
    limits = Limits(rpm=10, tpd=1000)
    decision, after = bucket.evaluate(None, 250, limits, NOW, consume=True)
    assert after == BucketState(9.0, NOW)
    assert decision.allowed and decision.refused_by is None
    assert decision.requests_remaining == 9
    assert decision.requests_reset_s == 6.0
    assert decision.tokens_used == 250
    assert decision.tokens_remaining == 750
    assert decision.tokens_reset_s == 6400.0
    assert decision.retry_after_s == 0.0


def test_evaluate_peek_writes_nothing() -> None:
    decision, after = bucket.evaluate(None, 0, Limits(rpm=10, tpd=0), NOW, consume=False)
    assert after is None
    assert decision.allowed and decision.requests_remaining == 10
    assert decision.requests_reset_s == 0.0


def test_evaluate_rpm_refusal() -> None:
    decision, after = bucket.evaluate(
        BucketState(0.0, NOW), 0, Limits(rpm=10, tpd=0), NOW + 3, consume=True
    )
    assert after is None
    assert not decision.allowed and decision.refused_by == "rpm"
    assert decision.requests_remaining == 0
    assert decision.requests_reset_s == 57.0  # 9.5 tokens at 1/6 per s
    assert decision.retry_after_s == 3.0  # 0.5 token at 1/6 per s


def test_evaluate_tpd_refusal_consumes_no_token_and_waits_for_midnight() -> None:
    decision, after = bucket.evaluate(
        BucketState(4.0, NOW), 1200, Limits(rpm=10, tpd=1000), NOW, consume=True
    )
    assert after is None
    assert decision.refused_by == "tpd"
    assert decision.requests_remaining == 4
    assert decision.tokens_used == 1200 and decision.tokens_remaining == 0
    assert decision.retry_after_s == 6400.0


def test_tpd_retry_after_also_waits_for_a_bucket_token() -> None:
    # 10 s before midnight with an empty bucket at rpm=1: a token takes 60 s.
    late = NOW + 6390
    decision, _ = bucket.evaluate(
        BucketState(0.0, late), 1000, Limits(rpm=1, tpd=1000), late, consume=True
    )
    assert decision.refused_by == "tpd" and decision.retry_after_s == 60.0


def test_unlimited_limits_report_zeroes() -> None:
    decision, after = bucket.evaluate(None, 123, Limits(rpm=0, tpd=0), NOW, consume=True)
    assert after is None
    assert decision.allowed
    assert decision.requests_remaining == 0 and decision.requests_reset_s == 0.0
    assert decision.tokens_used == 123 and decision.tokens_remaining == 0

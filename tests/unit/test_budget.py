"""Unit tests for gateway/limits/budget.py: nano-USD money and UTC calendar periods.
Timestamps are worked out in the comments; 1_700_000_000 is Tuesday 2023-11-14 22:13:20 UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from gateway.limits import budget
from gateway.limits.base import Period

NOW = 1_700_000_000.0


def at(iso: str) -> float:
    """A UTC wall-clock time as a unix timestamp."""
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


def test_nanos_are_exact() -> None:
    assert budget.to_nanos(Decimal("0.000000001")) == 1
    assert budget.to_nanos(Decimal("1.5")) == 1_500_000_000
    assert budget.to_nanos(Decimal("0")) == 0
    assert budget.from_nanos(1) == Decimal("0.000000001")
    assert str(budget.from_nanos(123_456_789_012)) == "123.456789012"
    assert budget.from_nanos(0) == 0
    # Sums of nanos are sums of the Decimals they came from, with no float drift.
    costs = [Decimal("0.1"), Decimal("0.2"), Decimal("0.000000007")]
    assert budget.from_nanos(sum(budget.to_nanos(c) for c in costs)) == sum(costs)


def test_costs_round_up_and_maxima_round_down() -> None:
    assert budget.to_nanos(Decimal("0.0000000001")) == 1
    assert budget.to_nanos(Decimal("0.0000000011")) == 2
    assert budget.to_nanos(Decimal("0.0000000019"), round_down=True) == 1


@pytest.mark.parametrize("bad", [Decimal(-1), Decimal("NaN"), Decimal("Infinity"), Decimal(10**7)])
def test_amounts_out_of_range_are_refused(bad: Decimal) -> None:
    with pytest.raises(ValueError):
        budget.to_nanos(bad)


def test_the_largest_amount_a_budget_counts() -> None:
    assert budget.to_nanos(budget.from_nanos(budget.MAX_NANOS)) == budget.MAX_NANOS
    with pytest.raises(ValueError):
        budget.to_nanos(budget.from_nanos(budget.MAX_NANOS + 1))


@pytest.mark.parametrize(
    ("period", "now", "key"),
    [
        ("daily", NOW, "d20231114"),
        ("daily", at("2023-11-14T23:59:59.999"), "d20231114"),
        ("daily", at("2023-11-15T00:00:00"), "d20231115"),
        ("weekly", NOW, "w20231113"),  # Tuesday: the week of Monday the 13th
        ("weekly", at("2023-11-13T00:00:00"), "w20231113"),
        ("weekly", at("2023-11-19T23:59:59"), "w20231113"),  # Sunday still belongs to it
        ("weekly", at("2023-11-20T00:00:00"), "w20231120"),
        ("weekly", at("2024-01-03T12:00:00"), "w20240101"),
        ("weekly", at("2023-12-31T12:00:00"), "w20231225"),
        ("monthly", NOW, "m202311"),
        ("monthly", at("2023-12-31T23:59:59"), "m202312"),
        ("monthly", at("2024-01-01T00:00:00"), "m202401"),
        ("total", NOW, "total"),
        ("total", at("2031-05-05T00:00:00"), "total"),
    ],
)
def test_period_keys(period: Period, now: float, key: str) -> None:
    assert budget.period_key(period, now) == key


@pytest.mark.parametrize(
    ("period", "now", "end"),
    [
        ("daily", NOW, at("2023-11-15T00:00:00")),
        ("weekly", NOW, at("2023-11-20T00:00:00")),
        ("weekly", at("2023-11-20T00:00:00"), at("2023-11-27T00:00:00")),
        ("monthly", NOW, at("2023-12-01T00:00:00")),
        ("monthly", at("2023-12-15T00:00:00"), at("2024-01-01T00:00:00")),
        ("monthly", at("2024-02-29T23:00:00"), at("2024-03-01T00:00:00")),
        ("monthly", at("2024-01-31T00:00:00"), at("2024-02-01T00:00:00")),
        ("total", NOW, None),
    ],
)
def test_period_ends(period: Period, now: float, end: float | None) -> None:
    assert budget.period_end(period, now) == end


def test_spend_counters_outlive_their_period_by_the_margin() -> None:
    assert budget.spend_ttl_s("daily", NOW) == 6400 + budget.SPEND_MARGIN_S
    assert budget.spend_ttl_s("daily", NOW + 0.5) == 6400 + budget.SPEND_MARGIN_S  # rounded up
    assert budget.spend_ttl_s("total", NOW) is None


def test_a_reservation_fits_up_to_the_last_nano() -> None:
    assert budget.fits(100, spend=60, reserved=30, reserve=10)
    assert not budget.fits(100, spend=60, reserved=30, reserve=11)
    assert budget.fits(0, spend=0, reserved=0, reserve=0)
    assert budget.remaining(100, 60, 30) == 10
    assert budget.remaining(100, 90, 30) == 0


def test_retry_after_a_budget_refusal() -> None:
    # Live reservations in the way: they may settle for less any moment.
    assert budget.retry_after("daily", NOW, 100, spend=50, reserve=40) == budget.RESERVATION_RETRY_S
    # Spend alone leaves no room: only the next period helps.
    assert budget.retry_after("daily", NOW, 100, spend=70, reserve=40) == 6400
    assert budget.retry_after("weekly", NOW, 100, spend=70, reserve=40) == 6400 + 5 * 86400
    assert budget.retry_after("total", NOW, 100, spend=70, reserve=40) == 0.0

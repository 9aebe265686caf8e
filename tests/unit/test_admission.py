"""Unit tests for gateway/limits/admission.py: the refusal rule and the Decision over several
subjects and budgets, without a backend. 1_700_000_000 is 6400 s before a UTC midnight."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from gateway.limits import admission, bucket
from gateway.limits.admission import BudgetState, SubjectState
from gateway.limits.base import Budget, Limits, Subject

NOW = 1_700_000_000.0


@pytest.mark.parametrize("limits", [Limits(10, 1000), Limits(0, 1000), Limits(7, 0), Limits(0, 0)])
@pytest.mark.parametrize(("tokens", "used"), [(10.0, 0), (0.5, 10), (3.0, 1000), (0.0, 2000)])
def test_one_subject_decides_as_the_bucket_does(limits: Limits, tokens: float, used: int) -> None:
    req = admission.request([Subject("u", limits)], (), Decimal(0), "")
    state = [SubjectState(tokens if limits.rpm else 0.0, used)]
    refused = admission.first_refusal(req, state, ())
    expected = bucket.refusal(limits, state[0].tokens, used)
    assert refused == (None if expected is None else (expected, 0))
    decision = admission.decide_all(req, state, (), refused, NOW)
    same = bucket.decide(limits, expected, state[0].tokens, used, NOW)
    assert decision == replace(same, refused_id=None if expected is None else "u")


def test_subjects_come_before_budgets_and_the_first_refusal_names_the_decision() -> None:
    req = admission.request(
        [Subject("u:a", Limits(10, 100)), Subject("k:1", Limits(2, 0))],
        [Budget("t:x", Decimal("0.001"), "daily")],
        Decimal("0.002"),
        "r",
    )
    states = [SubjectState(5.0, 100), SubjectState(0.0, 0)]  # both subjects refuse
    refused = admission.first_refusal(req, states, [BudgetState(0, 0)])
    assert refused == ("tpd", 0)
    decision = admission.decide_all(req, states, [BudgetState(0, 0)], refused, NOW)
    assert (decision.refused_by, decision.refused_id) == ("tpd", "u:a")
    # A retry must pass both: midnight for the tokens; the key's bucket refills sooner.
    assert decision.retry_after_s == pytest.approx(6400.0)

    fine = [SubjectState(5.0, 0), SubjectState(1.0, 0)]
    refused = admission.first_refusal(req, fine, [BudgetState(0, 0)])
    assert refused == ("budget", 0)
    decision = admission.decide_all(req, fine, [BudgetState(0, 0)], refused, NOW)
    assert (decision.refused_by, decision.refused_id) == ("budget", "t:x")
    assert decision.retry_after_s == pytest.approx(6400.0)  # 0.002 > 0.001 however long
    assert decision.budget_remaining_usd == Decimal("0.001")


def test_headers_speak_of_the_tightest_subject_per_field() -> None:
    req = admission.request(
        [
            Subject("u:a", Limits(10, 100)),
            Subject("t:x", Limits(60, 1000)),
            Subject("k:1", Limits(3, 0)),
        ],
        (),
        Decimal(0),
        "",
    )
    states = [SubjectState(4.0, 90), SubjectState(59.0, 500), SubjectState(2.0, 0)]
    decision = admission.decide_all(req, states, (), None, NOW)
    assert decision.limits == Limits(rpm=3, tpd=100)
    assert decision.requests_remaining == 2 and decision.requests_reset_s == pytest.approx(20.0)
    assert decision.tokens_used == 90 and decision.tokens_remaining == 10
    assert decision.budget_remaining_usd is None and decision.budgets == ()


def test_the_tightest_budget_is_reported() -> None:
    budgets = [Budget("u:a", Decimal(1), "daily"), Budget("t:x", Decimal("0.5"), "monthly")]
    req = admission.request((), budgets, Decimal("0.1"), "r")
    states = [BudgetState(200_000_000, 100_000_000), BudgetState(300_000_000, 100_000_000)]
    decision = admission.decide_all(req, (), states, None, NOW)
    assert decision.allowed and decision.budget_remaining_usd == Decimal("0.1")
    assert [u.remaining_usd for u in decision.budgets] == [Decimal("0.7"), Decimal("0.1")]


@pytest.mark.parametrize(
    ("subjects", "budgets", "request_id"),
    [
        ([Subject("u", Limits(1, 1)), Subject("u", Limits(2, 2))], [], ""),
        ([], [Budget("b", Decimal(1), "daily"), Budget("b", Decimal(2), "total")], "r"),
        ([], [Budget("b", Decimal(1), "daily")], ""),
        ([], [], ""),
    ],
)
def test_requests_a_backend_refuses(
    subjects: list[Subject], budgets: list[Budget], request_id: str
) -> None:
    with pytest.raises(ValueError):
        admission.request(subjects, budgets, Decimal(0), request_id)

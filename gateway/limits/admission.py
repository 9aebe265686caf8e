"""Pure admission over several subjects and budgets at once: the refusal rule and the Decision.
No I/O; memory.py applies it in process, redis.py's Lua script mirrors `first_refusal`.

Rules:
- Subjects are checked in the order given, each by bucket.refusal (tpd, then rpm) and then by
  its cap on requests in flight (limits.parallel, counting the live places other requests
  hold); then the budgets in order, by budget.fits. The first refusal names the Decision's
  `refused_by` and `refused_id`; any refusal consumes nothing anywhere.
- A request id admitted again replaces its earlier reservation on each budget: the check
  counts the live reservations without it.
- Headers speak of the tightest subject: fewest whole requests left for the request fields,
  fewest tokens left for the token fields (a refusing subject wins its own field); with no
  tpd anywhere the token total is the first subject's.
- retry_after_s is the latest of every refusing subject's and budget's own wait, since a retry
  must pass them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from gateway.limits import bucket, budget
from gateway.limits.base import Budget, BudgetUse, Decision, Limits, Subject

BUDGET = "budget"
PARALLEL = "parallel"
PARALLEL_RETRY_S = 1.0  # a place in flight frees when some request ends: soon, but unknown


@dataclass(frozen=True, slots=True)
class SubjectState:
    """A subject as admission sees it: bucket tokens refilled to now (after the take when
    admitted), today's tokens used, and the live places other requests hold in flight."""

    tokens: float
    used: int
    in_flight: int = 0


@dataclass(frozen=True, slots=True)
class BudgetState:
    """A budget as admission sees it, in nano-USD: the period's spend and live reservations
    (this request's own included when admitted, its earlier one excluded when refused)."""

    spend: int
    reserved: int


@dataclass(frozen=True, slots=True)
class Request:
    """A validated admission: subjects, budgets with their maxima in nanos, the reservation."""

    subjects: tuple[Subject, ...]
    budgets: tuple[Budget, ...]
    max_nanos: tuple[int, ...]
    reserve: int
    request_id: str


def request(
    subjects: Sequence[Subject],
    budgets: Sequence[Budget],
    reserve_usd: Decimal,
    request_id: str,
    *,
    peek: bool = False,
) -> Request:
    """Check the arguments every backend takes; raise ValueError for a caller's mistake."""
    if not subjects and not budgets:
        raise ValueError("an admission needs at least one subject or budget")
    ids = [s.id for s in subjects]
    if len(set(ids)) != len(ids) or len({b.id for b in budgets}) != len(budgets):
        raise ValueError("subject and budget ids must not repeat")
    if budgets and not request_id and not peek:
        raise ValueError("a request id is needed to reserve against budgets")
    return Request(
        subjects=tuple(subjects),
        budgets=tuple(budgets),
        max_nanos=tuple(budget.to_nanos(b.max_usd, round_down=True) for b in budgets),
        reserve=budget.to_nanos(reserve_usd),
        request_id=request_id,
    )


def first_refusal(
    req: Request, subjects: Sequence[SubjectState], budgets: Sequence[BudgetState]
) -> tuple[str, int] | None:
    """The first refusal as (kind, index into subjects or budgets), or None to admit."""
    for i, (subject, state) in enumerate(zip(req.subjects, subjects, strict=True)):
        kind = bucket.refusal(subject.limits, state.tokens, state.used)
        if kind is None and 0 < subject.limits.parallel <= state.in_flight:
            kind = PARALLEL
        if kind is not None:
            return kind, i
    for j, (max_nanos, held) in enumerate(zip(req.max_nanos, budgets, strict=True)):
        if not budget.fits(max_nanos, held.spend, held.reserved, req.reserve):
            return BUDGET, j
    return None


def decide_all(
    req: Request,
    subjects: Sequence[SubjectState],
    budgets: Sequence[BudgetState],
    refused: tuple[str, int] | None,
    now: float,
) -> Decision:
    """Build the Decision from the states after admission (before it, for a refusal)."""
    per_subject = [
        bucket.decide(
            s.limits,
            None if refused is None else bucket.refusal(s.limits, st.tokens, st.used),
            st.tokens,
            st.used,
            now,
        )
        for s, st in zip(req.subjects, subjects, strict=True)
    ]
    waits = [d.retry_after_s for d in per_subject]
    if refused is not None and refused[0] == PARALLEL:
        waits.append(PARALLEL_RETRY_S)
    if refused is not None and refused[0] == BUDGET:
        j = refused[1]
        b, st = req.budgets[j], budgets[j]
        waits.append(budget.retry_after(b.period, now, req.max_nanos[j], st.spend, req.reserve))
    uses = tuple(
        BudgetUse(b, budget.from_nanos(st.spend), budget.from_nanos(st.reserved))
        for b, st in zip(req.budgets, budgets, strict=True)
    )
    requests = _tightest(per_subject, refused, bucket.RPM)
    tokens = _tightest(per_subject, refused, bucket.TPD)
    # With no tpd anywhere the headers omit tokens; the total is still reported (usage, logs).
    counted = tokens or (per_subject[0] if per_subject else None)
    return Decision(
        allowed=refused is None,
        refused_by=None if refused is None else refused[0],
        limits=Limits(
            rpm=requests.limits.rpm if requests else 0, tpd=tokens.limits.tpd if tokens else 0
        ),
        requests_remaining=requests.requests_remaining if requests else 0,
        requests_reset_s=requests.requests_reset_s if requests else 0.0,
        tokens_used=counted.tokens_used if counted else 0,
        tokens_remaining=tokens.tokens_remaining if tokens else 0,
        tokens_reset_s=bucket.seconds_until_midnight(now),
        retry_after_s=0.0 if refused is None else max(waits, default=0.0),
        refused_id=None if refused is None else _refused_id(req, refused),
        budget_remaining_usd=min((u.remaining_usd for u in uses), default=None),
        budgets=uses,
    )


def _tightest(
    decisions: Sequence[Decision], refused: tuple[str, int] | None, kind: str
) -> Decision | None:
    """The subject whose figures the `kind` headers show, or None if no subject has that limit."""
    if refused is not None and refused[0] == kind:
        return decisions[refused[1]]
    if kind == bucket.RPM:
        limited = [d for d in decisions if d.limits.rpm > 0]
        return min(limited, key=lambda d: d.requests_remaining, default=None)
    limited = [d for d in decisions if d.limits.tpd > 0]
    return min(limited, key=lambda d: d.tokens_remaining, default=None)


def _refused_id(req: Request, refused: tuple[str, int]) -> str:
    kind, index = refused
    return req.budgets[index].id if kind == BUDGET else req.subjects[index].id

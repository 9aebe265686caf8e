"""What a request is held to besides its user's quota (SPEC 10): the subjects it counts against
(user, key, team), the USD budgets that apply, model allow-lists, the worst-case cost reserved at
admission, and request tags. Pure: plain data in, plain data out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import cast

from ..errors import GatewayError, InvalidRequest, clip
from ..limits import Budget, Limits, Period, Subject
from ..store import QuotaOverride, Team
from .auth import Principal

MAX_TAGS = 10
MAX_TAG_LENGTH = 64
DEFAULT_MAX_OUTPUT = 4096
NANO = Decimal("0.000000001")
MILLION = Decimal(1_000_000)


class ModelNotAllowed(GatewayError):
    status, type, code = 403, "permission_error", "model_not_allowed"


class BudgetExceeded(GatewayError):
    status, type, code = 429, "insufficient_quota", "budget_exceeded"


@dataclass(frozen=True, slots=True)
class Scope:
    """Everything one admission checks, and what settlement charges afterwards."""

    subjects: tuple[Subject, ...]
    budgets: tuple[Budget, ...]
    team: Team | None

    @property
    def subject_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.subjects)


def model_allowed(model: str, patterns: Iterable[str] | None) -> bool:
    """`patterns` None allows everything; else an exact name, `prefix/*` or `*` must match."""
    if patterns is None:
        return True
    for pattern in patterns:
        if pattern == model or pattern == "*":
            return True
        if pattern.endswith("/*") and model.startswith(pattern[:-1]):
            return True
    return False


def may_use(model: str, principal: Principal, team: Team | None) -> bool:
    """Whether the key's and the team's lists both allow `model`."""
    return model_allowed(model, principal.models) and model_allowed(
        model, team.models if team else None
    )


def check_model(model: str, principal: Principal, team: Team | None) -> None:
    """403 model_not_allowed unless the key's and the team's lists both allow `model`."""
    if not may_use(model, principal, team):
        raise ModelNotAllowed(f"This API key may not use the model `{clip(model)}`.", param="model")


def team_of(principal: Principal, override: QuotaOverride | None) -> str | None:
    """The key's team, else the user's (set through the quota override)."""
    return principal.team or (override.team if override else None)


def _budget(scope_id: str, amount: Decimal | None, period: str | None) -> list[Budget]:
    if amount is None or period is None:
        return []
    return [Budget(scope_id, Decimal(amount), cast(Period, period))]


def scope_for(
    principal: Principal,
    user_limits: Limits,
    override: QuotaOverride | None,
    team: Team | None,
    *,
    in_flight: bool = True,
) -> Scope:
    """The subjects and budgets of one request. The user's subject id is the bare uid (its
    counters predate the other subjects); a key or team with no rpm, tpd or (when the request
    is to hold a place `in_flight`) max_parallel_requests is no subject."""

    def cap(value: int | None) -> int:
        return (value or 0) if in_flight else 0

    user_cap = cap(override.max_parallel_requests if override else None)
    subjects = [Subject(principal.user, Limits(user_limits.rpm, user_limits.tpd, user_cap))]
    key = Limits(principal.rpm or 0, principal.tpd or 0, cap(principal.max_parallel_requests))
    if key.rpm or key.tpd or key.parallel:
        subjects.append(Subject(f"k:{principal.key_id}", key))
    if team is not None:
        limits = Limits(team.rpm or 0, team.tpd or 0, cap(team.max_parallel_requests))
        if limits.rpm or limits.tpd or limits.parallel:
            subjects.append(Subject(f"t:{team.id}", limits))
    budgets = _budget(
        f"u:{principal.user}",
        override.max_budget_usd if override else None,
        override.budget_period if override else None,
    )
    budgets += _budget(f"k:{principal.key_id}", principal.max_budget_usd, principal.budget_period)
    if team is not None:
        budgets += _budget(f"t:{team.id}", team.max_budget_usd, team.budget_period)
    return Scope(tuple(subjects), tuple(budgets), team)


def worst_case_usd(
    prompt_tokens: int,
    max_output: int | None,
    input_price: Decimal,
    output_price: Decimal,
    choices: int = 1,
) -> Decimal:
    """The most a request can cost, rounded up to 1e-9 USD: its prompt estimate at the input
    price plus `max_output` (None: 4096) tokens for each of its `choices` (`n`) at the output
    price (prices per million)."""
    output = (DEFAULT_MAX_OUTPUT if max_output is None else max_output) * max(1, choices)
    total = (prompt_tokens * input_price + output * output_price) / MILLION
    return total.quantize(NANO, rounding=ROUND_CEILING)


def parse_tags(header: str | None) -> tuple[str, ...]:
    """The X-Gateway-Tags of a request: comma-separated, at most 10 tags of 64 printable
    characters."""
    if not header:
        return ()
    tags = tuple(dict.fromkeys(t.strip() for t in header.split(",") if t.strip()))
    if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG_LENGTH for t in tags):
        raise InvalidRequest(
            f"X-Gateway-Tags takes at most {MAX_TAGS} tags of {MAX_TAG_LENGTH} characters.",
            param="X-Gateway-Tags",
            code="invalid_value",
        )
    # Bytes that are not UTF-8 arrive as lone surrogates (not printable): no row could hold them.
    if not all(t.isprintable() for t in tags):
        raise InvalidRequest(
            "X-Gateway-Tags must be printable UTF-8 text.",
            param="X-Gateway-Tags",
            code="invalid_value",
        )
    return tags

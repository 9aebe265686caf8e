"""The governance fields (SPEC 10) an admin sets through the API or the CLI, checked: model
allow-lists, expiry, rpm/tpd, budgets and their periods, team ids, key metadata.
Pure: each bad value is an InvalidRequest that names its field; None always means "not set"."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from ..errors import Conflict, InvalidRequest
from ..store.base import BUDGET_PERIODS

RPM_MAX = 2**31 - 1  # INTEGER columns
TPD_MAX = 10**12
PARALLEL_MAX = 10_000  # max_parallel_requests
BUDGET_LIMIT = 10**11  # NUMERIC(20, 9) holds less
UNIX_MAX = 253402300799  # 9999-12-31T23:59:59Z
_NANO = Decimal("1e-9")
MODELS_MAX = 256  # names in one allow-list
MODEL_NAME_MAX = 256
METADATA_MAX_BYTES = 4096  # it is copied onto every request-log row of the key
_TEAM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
TEAM_ID_PATTERN = f"^{_TEAM_ID.pattern}$"
_DAY, _OFFSET = r"\d{4}-\d{2}-\d{2}", r"([Zz]|[+-]\d{2}:\d{2})"
_RFC3339 = re.compile(rf"{_DAY}[Tt ]\d{{2}}:\d{{2}}:\d{{2}}(\.\d+)?{_OFFSET}", re.ASCII)
# The CLI's --expires: a bare date, or a time without seconds or offset, is fine too.
_LENIENT = re.compile(rf"{_DAY}([Tt ]\d{{2}}:\d{{2}}(:\d{{2}}(\.\d+)?)?{_OFFSET}?)?", re.ASCII)
_DECIMAL = re.compile(r"\d{1,11}(\.\d{1,9})?", re.ASCII)


def _bad(message: str, param: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def limit(value: object, param: str, high: int) -> int | None:
    """An rpm or tpd: an integer in [0, high] (60.0 counts as 60, as in JSON)."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"`{param}` must be an integer.", param, "invalid_type")
    if not 0 <= value <= high:
        raise _bad(f"`{param}` must be between 0 and {high}.", param)
    return value


def parallel(value: object, param: str = "max_parallel_requests") -> int | None:
    """A cap on requests in flight at once: an integer in [0, PARALLEL_MAX]; 0 is no cap."""
    return limit(value, param, PARALLEL_MAX)


def mcp_tools(value: object, param: str = "mcp_tools") -> tuple[str, ...] | None:
    """A non-empty list of MCP tool names (`<server>__<tool>`) or globs ending in `*`
    (`server__*`, `*`), without repeats; None: every tool."""
    names = _names(value, param, "tool")
    for name in names or ():
        if "*" in name[:-1]:
            raise _bad(f"`{param}`: `*` may only end a name, as in `server__*`.", param)
    return names


def models(value: object, param: str = "models") -> tuple[str, ...] | None:
    """A non-empty list of public model names or `prefix/*` globs, without repeats."""
    names = _names(value, param, "model")
    for name in names or ():
        if "*" in name.removesuffix("/*") or name == "/*":
            raise _bad(f"`{param}`: `*` may only end a name, as in `prefix/*`.", param)
    return names


def _names(value: object, param: str, noun: str) -> tuple[str, ...] | None:
    """A list of 1 to MODELS_MAX names (`noun`s) of 1 to MODEL_NAME_MAX characters, without
    repeats; None stays None (every one)."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise _bad(
            f"`{param}` must be a list of {noun} names (null: every {noun}).", param, "invalid_type"
        )
    if not value or len(value) > MODELS_MAX:
        raise _bad(f"`{param}` must list 1 to {MODELS_MAX} {noun}s (null: every {noun}).", param)
    for name in value:
        if not isinstance(name, str):
            raise _bad(f"`{param}` must hold strings.", param, "invalid_type")
        if not name or len(name) > MODEL_NAME_MAX or "\x00" in name:
            raise _bad(f"`{param}` names must be 1 to {MODEL_NAME_MAX} characters.", param)
    return tuple(dict.fromkeys(value))


def moment(value: object, param: str = "expires_at", *, lenient: bool = False) -> datetime | None:
    """An RFC 3339 date-time (or Unix seconds) as an aware UTC datetime. `lenient` (the CLI)
    also takes a bare date (00:00 UTC that day) and a time without offset (UTC)."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON counts 1.0e9 as an integer
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value <= UNIX_MAX:
                raise ValueError(value)
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            shape = _LENIENT if lenient else _RFC3339
            if shape.fullmatch(value):
                return _as_utc(datetime.fromisoformat(value.upper().replace("Z", "+00:00")))
            raise ValueError(value)
    except ValueError:
        example = "2026-12-31 or " if lenient else ""
        raise _bad(
            f"`{param}` must be a date-time like {example}2026-12-31T23:59:59Z.", param
        ) from None
    raise _bad(f"`{param}` must be an RFC 3339 date-time string.", param, "invalid_type")


def _as_utc(moment: datetime) -> datetime:
    """`moment` in UTC (naive = UTC already); one that UTC cannot hold, such as
    0001-01-01T00:00:00+01:00, becomes the first or last moment there is."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        edge = datetime.min if moment.year == 1 else datetime.max
        return edge.replace(tzinfo=UTC)


def budget(value: object, param: str = "max_budget_usd") -> Decimal | None:
    """USD, 0 or more, below 10^11: a number (rounded to 9 decimals, what the NUMERIC(20, 9)
    column holds) or a string of decimal digits with at most 9 decimals, taken exactly."""
    if value is None:
        return None
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value):
            raise _bad(f'`{param}` must be a decimal number of USD, like "12.50".', param)
        return Decimal(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"`{param}` must be a number or a decimal string.", param, "invalid_type")
    amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not amount.is_finite() or not 0 <= amount < BUDGET_LIMIT:
        raise _bad(f"`{param}` must be at least 0 and below {BUDGET_LIMIT}.", param)
    # A JSON number is binary floating point already: round it to the column's 9 decimals.
    return amount.quantize(_NANO) + 0  # + 0 turns -0 into 0


def period(value: object, param: str = "budget_period") -> str | None:
    """daily | weekly | monthly | total."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(f"`{param}` must be a string.", param, "invalid_type")
    if value not in BUDGET_PERIODS:
        raise _bad(f"`{param}` must be one of {', '.join(BUDGET_PERIODS)}.", param)
    return value


def check_budget(amount: Decimal | None, every: str | None, param: str = "budget_period") -> None:
    """A budget needs its period."""
    if amount is not None and every is None:
        raise _bad(
            f"`{param}` is required with a budget (one of {', '.join(BUDGET_PERIODS)}).",
            param,
            "missing_required_parameter",
        )


def check_changed_budget(
    amount: Decimal | None, every: str | None, sent: Mapping[str, object], what: str
) -> None:
    """After a change (PATCH) merged with the stored settings, a budget needs its period: the
    change's own fault (it sends a budget with a null period) is a 400, a conflict with the
    stored settings (a budget sent where no period is stored, or a period cleared under a stored
    budget) a 409."""
    if amount is None or every is not None:
        return
    if "budget_period" in sent and sent.get("max_budget_usd") is not None:
        check_budget(amount, every)
    raise Conflict(
        f"This {what} would have a budget without a budget_period: send both.",
        param="budget_period",
        code="budget_period_required",
    )


def team_id(value: object, param: str = "team") -> str | None:
    """1 to 64 letters, digits, `.`, `_` or `-`, starting with a letter or digit."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(f"`{param}` must be a string.", param, "invalid_type")
    if not _TEAM_ID.fullmatch(value):
        raise _bad(
            f"`{param}` must be 1 to 64 letters, digits, `.`, `_` or `-`, starting with a "
            "letter or digit.",
            param,
        )
    return value


def metadata(value: object, param: str = "metadata") -> dict[str, Any] | None:
    """A JSON object of at most METADATA_MAX_BYTES once encoded."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad(f"`{param}` must be a JSON object.", param, "invalid_type")
    if len(orjson.dumps(value)) > METADATA_MAX_BYTES:
        raise _bad(f"`{param}` must be at most {METADATA_MAX_BYTES} bytes as JSON.", param)
    return value


def money_text(amount: Decimal | None) -> str | None:
    """A budget as the API shows it: exact fixed-point text without trailing zeros."""
    if amount is None:
        return None
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text

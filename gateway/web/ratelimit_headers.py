"""OpenAI's x-ratelimit-* response headers and Retry-After, built from a limiter Decision.
Pure: durations are rendered the way OpenAI does (`1s`, `120ms`, `6m0s`)."""

from __future__ import annotations

import math

from ..limits import Decision


def duration(seconds: float) -> str:
    """Go-style duration string as OpenAI sends it: `120ms`, `1s`, `1.5s`, `6m0s`, `2h3m4s`."""
    if seconds <= 0:
        return "0s"
    # Round first, so 0.9996 s reads `1s` rather than `1000ms`.
    millis = max(1, round(seconds * 1000))
    if millis < 1000:
        return f"{millis}ms"
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs = f"{millis / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def ratelimit_headers(decision: Decision) -> dict[str, str]:
    """The six headers (an unlimited quota omits its three), plus Retry-After on a refusal."""
    headers: dict[str, str] = {}
    limits = decision.limits
    if limits.rpm:
        headers["x-ratelimit-limit-requests"] = str(limits.rpm)
        headers["x-ratelimit-remaining-requests"] = str(decision.requests_remaining)
        headers["x-ratelimit-reset-requests"] = duration(decision.requests_reset_s)
    if limits.tpd:
        headers["x-ratelimit-limit-tokens"] = str(limits.tpd)
        headers["x-ratelimit-remaining-tokens"] = str(decision.tokens_remaining)
        headers["x-ratelimit-reset-tokens"] = duration(decision.tokens_reset_s)
    if decision.budget_remaining_usd is not None:
        headers["x-budget-remaining-usd"] = f"{decision.budget_remaining_usd:f}"
    never = decision.refused_by == "budget" and decision.retry_after_s <= 0  # a spent total budget
    if not decision.allowed and not never:
        headers["Retry-After"] = str(max(1, math.ceil(decision.retry_after_s)))
    return headers

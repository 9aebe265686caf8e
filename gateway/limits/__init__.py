"""Quotas and budgets: request buckets (rpm), daily tokens (tpd) and USD budgets per subject,
in memory or shared via Redis. Callers depend on RateLimiter; only the app wiring picks a backend
(gateway.limits.redis)."""

from gateway.limits.base import (
    Budget,
    BudgetUse,
    Decision,
    LimiterUnavailable,
    Limits,
    Period,
    RateLimiter,
    Settlement,
    Subject,
)
from gateway.limits.fallback import FallbackLimiter
from gateway.limits.memory import MemoryLimiter

__all__ = [
    "Budget",
    "BudgetUse",
    "Decision",
    "FallbackLimiter",
    "LimiterUnavailable",
    "Limits",
    "MemoryLimiter",
    "Period",
    "RateLimiter",
    "Settlement",
    "Subject",
]

"""Per-user quotas: request bucket (rpm) and daily tokens (tpd), in memory or shared via Redis.
Callers depend on RateLimiter; only the app wiring picks a backend (gateway.limits.redis)."""

from gateway.limits.base import Decision, LimiterUnavailable, Limits, RateLimiter
from gateway.limits.fallback import FallbackLimiter
from gateway.limits.memory import MemoryLimiter

__all__ = [
    "Decision",
    "FallbackLimiter",
    "LimiterUnavailable",
    "Limits",
    "MemoryLimiter",
    "RateLimiter",
]

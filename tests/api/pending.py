"""Documented operations whose handler is not registered on this branch yet (web/messages.py is
being written). test_openapi.py tolerates them as undocumented-by-code and the fuzz skips them.

LEAD: once gateway/web/messages.py registers these routes, delete the entries (test_openapi.py
fails until you do), and the fuzz will cover them: Anthropic's error shape on every 4xx of these
paths (schemathesis_hooks.py), `x-api-key` auth, and one request-log row with `endpoint`
`messages` per authenticated POST /v1/messages (test_fuzz.py PROXIED; add count_tokens there if
it logs rows too).
"""

from __future__ import annotations

PENDING_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("POST", "/v1/messages"),
        ("POST", "/v1/messages/count_tokens"),
    }
)

"""The OpenAPI 3.1 description of the gateway's HTTP API (SPEC 4, 8, 9), built as plain data.
Pure: `build_document(tiers=...)` -> dict; web/docs.py serves it at /openapi.json and /docs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..version import version
from .console import console_paths, console_schemas
from .governance import governance_paths
from .paths import all_paths
from .schemas import RPM_MAX, TPD_MAX, component_schemas
from .shapes import HEADERS
from .signin import signin_paths, signin_schemas, with_console_sessions

__all__ = ["RPM_MAX", "TPD_MAX", "build_document"]

DESCRIPTION = """\
An OpenAI-compatible gateway: point an OpenAI SDK at `<gateway>/v1` and use a gateway key.

Anthropic SDKs and Claude Code use `<gateway>` as `ANTHROPIC_BASE_URL` with a gateway key.

**Errors** have OpenAI's shape,
`{"error": {"message": "...", "type": "...", "param": null|"field", "code": "..."}}`; each
operation lists the codes it can return. `param` names the offending field of a 400.
An upstream 4xx on a proxied route reaches the client unchanged (its status and body).
The Anthropic routes (/v1/messages...) answer errors in Anthropic's shape instead,
`{"type": "error", "error": {"type": "...", "message": "..."}}`.
A method a route does not support gets 405 `method_not_allowed` (with `Allow`), an unknown route
404 `not_found`. Every response, errors included, carries `X-Request-Id` (echoed when the
client sent a printable ASCII one of at most 128 characters, generated otherwise).

**Rate limits**: every response of a proxied route (chat, embeddings, completions, responses),
429s included, carries OpenAI's
`x-ratelimit-{limit,remaining,reset}-{requests,tokens}` headers (the token headers speak of the
daily quota; an unlimited quota omits its three); a 429 also carries `Retry-After` in whole
seconds.

**Streams**: with `"stream": true` the answer is `text/event-stream`, upstream's events relayed
byte for byte. A failure before the first byte is a plain JSON error; after it, one
`data: {"error": {..., "code": "stream_error"}}` event, then the connection closes.

**Accounting**: each request to a proxied route is one request-log row and one
`gateway_requests_total` sample, whose `endpoint` says which route: `chat`, `embeddings`,
`completions`, `responses` or `messages`. `GET /v1/models` says which endpoints each model
accepts (`capabilities`).
"""


def _join(paths: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """`paths` with the items of `more` added; operations on a path in both are put together."""
    return {**paths, **{path: {**paths.get(path, {}), **item} for path, item in more.items()}}


def build_document(*, tiers: Iterable[str] = ()) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document; `tiers` (the configured quota tiers) become enums."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "AI Gateway",
            "version": version(),
            "description": DESCRIPTION,
        },
        "tags": [
            {"name": "Chat", "description": "OpenAI's chat completions, proxied."},
            {"name": "Embeddings", "description": "OpenAI's embeddings."},
            {"name": "Completions", "description": "OpenAI's legacy text completions."},
            {"name": "Responses", "description": "OpenAI's Responses API, relayed or bridged."},
            {"name": "Anthropic", "description": "Anthropic's Messages API (its error shape)."},
            {"name": "Models", "description": "Models from the config."},
            {"name": "Sessions", "description": "Server-side conversation history."},
            {"name": "Usage", "description": "The caller's usage and quota."},
            {
                "name": "Admin",
                "description": "Keys, quotas, usage, routes (admin key, or a "
                "console session whose role allows it: else 403 `permission_error`).",
            },
            {"name": "Console sign-in", "description": "OpenID Connect sign-in (auth.oidc)."},
            {"name": "Operations", "description": "Health, readiness, metrics (no key)."},
            {"name": "Reference", "description": "This reference (no key)."},
        ],
        "paths": with_console_sessions(
            _join(_join(_join(all_paths(), governance_paths()), console_paths()), signin_paths())
        ),
        "components": {
            "securitySchemes": {
                "UserKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A gateway API key: `sk-gw-...` from `gateway keys create` "
                    "or POST /admin/keys, or a static key from `auth.keys`.",
                },
                "AnthropicKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "x-api-key",
                    "description": "A gateway key as Anthropic's SDKs send it (the Anthropic "
                    "routes only; they take the Bearer header too).",
                },
                "AdminKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`auth.admin_key` from the config (empty: /admin is off).",
                },
                "ConsoleSession": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "gw_console",
                    "description": "A console session (auth.oidc, GET /ui/login); a change "
                    "made with it also needs `X-CSRF-Token` from GET /ui/session.",
                },
            },
            "headers": HEADERS,
            "schemas": {
                **component_schemas(list(tiers)),
                **console_schemas(),
                **signin_schemas(),
            },
        },
    }

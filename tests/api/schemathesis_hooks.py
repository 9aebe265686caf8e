"""Schemathesis checks of our own, loaded by the CLI run in test_fuzz.py (config `hooks`).
Every response: X-Request-Id; every error: OpenAI's exact error shape (Anthropic's on the
Anthropic routes); every response of chat, embeddings, completions, responses: rate limits."""

from __future__ import annotations

import json
import re
from typing import Any

import schemathesis

from gateway.access.governance_fields import TEAM_ID_PATTERN

ERROR_KEYS = {"message", "type", "param", "code"}
TEAM_ID = re.compile(TEAM_ID_PATTERN)
ANTHROPIC_PATHS = ("/v1/messages", "/v1/messages/count_tokens")
PROXIED_PATHS = ("/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/responses")
RATE_HEADERS = [
    f"x-ratelimit-{what}-{kind}"
    for kind in ("requests", "tokens")
    for what in ("limit", "remaining", "reset")
]


def _header(response: schemathesis.Response, name: str) -> str | None:
    values = response.headers.get(name.lower())
    return values[0] if values else None


@schemathesis.hook("filter_body").apply_to(name="POST /v1/completions")
def completions_name_a_completions_model(ctx: schemathesis.HookContext, body: object) -> bool:
    """The fuzz config's echo models cannot serve legacy completions: their 400
    model_not_supported is a fact of the config, which the document cannot express."""
    model = body.get("model") if isinstance(body, dict) else None
    return not (isinstance(model, str) and (model == "echo" or model.startswith("echo/")))


@schemathesis.check
def request_id_everywhere(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """SPEC 4: every response, errors included, carries X-Request-Id."""
    assert _header(response, "X-Request-Id"), "response without X-Request-Id"
    return None


@schemathesis.check
def openai_error_shape(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """SPEC 4: an error body is exactly {"error": {message, type, param, code}} as JSON."""
    if response.status_code < 400:
        return None
    if case.operation.path == "/readyz" and response.status_code == 503:
        return None  # documented: a readiness report, not an error
    media = (_header(response, "Content-Type") or "").split(";")[0].strip()
    assert media == "application/json", f"error with Content-Type {media!r}"
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError("error body is not JSON") from None
    if case.operation.path in ANTHROPIC_PATHS:
        assert_anthropic_error(body)
        return None
    assert isinstance(body, dict) and set(body) == {"error"}, f"not an OpenAI error: {body!r}"
    error = body["error"]
    assert isinstance(error, dict) and set(error) == ERROR_KEYS, f"error keys: {error!r}"
    assert isinstance(error["message"], str) and error["message"], "empty message"
    assert isinstance(error["type"], str) and error["type"], "empty type"
    assert error["param"] is None or isinstance(error["param"], str), "param not str|null"
    assert isinstance(error["code"], str) and error["code"], "gateway errors always have a code"
    return None


def assert_anthropic_error(body: object) -> None:
    """SPEC 9: {"type": "error", "error": {"type", "message"}} (a `request_id` may follow)."""
    assert isinstance(body, dict) and body.get("type") == "error", f"not Anthropic's: {body!r}"
    assert set(body) <= {"type", "error", "request_id"}, f"error keys: {body!r}"
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"type", "message"}, f"error: {error!r}"
    assert isinstance(error["type"], str) and error["type"], "empty type"
    assert isinstance(error["message"], str) and error["message"], "empty message"


@schemathesis.check
def proxied_ratelimit_headers(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """SPEC 4.4 and 8: every response of a proxied route but a 401 carries the six headers (the
    fuzz user's rpm and tpd are both finite), and a 429 also Retry-After."""
    if case.operation.path not in PROXIED_PATHS or case.method.upper() != "POST":
        return None
    if response.status_code == 401:
        return None  # no user, so no quota to speak of
    missing = [name for name in RATE_HEADERS if not _header(response, name)]
    assert not missing, f"{response.status_code} without {', '.join(missing)}"
    if response.status_code == 429:
        assert (_header(response, "Retry-After") or "0").isdigit(), "429 without Retry-After"
    return None


@schemathesis.hook
def before_call(
    ctx: schemathesis.HookContext, case: schemathesis.Case, kwargs: dict[str, Any]
) -> None:
    """The schema cannot say which teams exist, and naming one that does not is a 400 (tested in
    tests/e2e/test_admin_governance.py): a well-formed `team` in a body becomes null, so that
    schema-valid requests stay acceptable. Malformed ones are left for the negative checks."""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("team"), str) and TEAM_ID.match(body["team"]):
        body["team"] = None

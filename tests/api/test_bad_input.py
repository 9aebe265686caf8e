"""Hand-written bad input for every route that takes some: a clear 4xx in OpenAI's error shape,
and nothing stored (no session, key or quota row, no upstream call, log rows `rejected`)."""

from __future__ import annotations

import sqlite3
from urllib.parse import quote

import aiohttp
import orjson
import pytest
import yarl
from multidict import CIMultiDict

from tests.support.clients import bearer
from tests.support.gateway import ADMIN_KEY, USER_KEY, base_config

CHAT = "/v1/chat/completions"
BODY_LIMIT = 1 << 20  # big enough for 100000 levels of nesting to reach the JSON parser
OK_MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def gateway_config(upstream, tmp_path):
    mapping = base_config(upstream.base_url, tmp_path)
    mapping["server"]["max_body_bytes"] = BODY_LIMIT
    return mapping


def chat_body(**fields) -> bytes:
    body = {"model": "fake-model", "messages": OK_MESSAGES, **fields}
    return orjson.dumps({k: v for k, v in body.items() if v is not ...})


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def by_id(argnames: tuple[str, ...], cases: list[tuple]) -> pytest.MarkDecorator:
    """Parametrize over `cases`, each row (test id, *values of argnames)."""
    return pytest.mark.parametrize(
        argnames, [case[1:] for case in cases], ids=[case[0] for case in cases]
    )


async def send(
    gateway, method: str, path: str, body: bytes | None = None, key: str = USER_KEY
) -> tuple[int, CIMultiDict, bytes]:
    """One request with the path sent exactly as written (no client-side normalisation)."""
    url = yarl.URL(gateway.url + path, encoded=True)
    headers = {**bearer(key), "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, data=body, headers=headers) as resp,
    ):
        return resp.status, CIMultiDict(resp.headers), await resp.read()


def assert_error(got: tuple[int, CIMultiDict, bytes], status: int, code: str, param=...) -> dict:
    """A clear error: the status, OpenAI's exact shape, the code, and `param` when given."""
    got_status, headers, raw = got
    assert got_status == status, raw[:300]
    assert headers["Content-Type"].startswith("application/json")
    assert headers.get("X-Request-Id")
    body = orjson.loads(raw)
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]  # ids are echoed in full
    assert error["type"] == ("invalid_request_error" if status < 500 else "server_error")
    assert error["code"] == code, error
    if param is not ...:
        assert error["param"] == param, error
    return error


async def new_session(gateway, body: bytes = b"{}") -> dict:
    """A session created through the API (as USER_KEY), as the API returned it."""
    status, _, raw = await send(gateway, "POST", "/v1/ai/sessions", body)
    assert status == 201, raw
    return orjson.loads(raw)


async def table(gateway, sql: str) -> list[tuple]:
    await gateway.services.writer.flush(5.0)
    with sqlite3.connect(gateway.config.database.url.removeprefix("sqlite:///")) as db:
        return [tuple(r) for r in db.execute(sql)]


async def assert_nothing_stored(gateway, upstream, statuses: list[int]) -> None:
    """No upstream call, no stored row but one `rejected` log row per rejected chat request."""
    assert upstream.received == []
    assert await table(gateway, "SELECT session_id FROM ai_session") == []
    assert await table(gateway, "SELECT session_id FROM ai_message") == []
    assert await table(gateway, "SELECT id FROM ai_api_key") == []
    assert await table(gateway, "SELECT uid FROM ai_user_quota") == []
    logs = await table(gateway, "SELECT status, status_code FROM ai_request_log ORDER BY id")
    assert logs == [("rejected", s) for s in statuses]


# Roles are checked where a translation must understand them (echo); a relay leaves them to
# the provider (test_chat.py::test_roles_are_the_providers_business_on_a_relay).
ROLE_DEEP = b'{"model":"echo","messages":[{"role":' + nested(1000) + b"}]}"
CHAT_CASES = [
    # (id, raw body, status, code, param)
    ("invalid-utf8", b'{"model":"fake-model","messages":[{"role":"user","content":"\xff\xfe"}]}',
     400, "invalid_request", None),
    ("not-json", b'{"model": "fake-model", "messages": [', 400, "invalid_request", None),
    ("empty-body", b"", 400, "invalid_request", None),
    ("array-body", b"[]", 400, "invalid_request", None),
    ("nested-100000", nested(100_000), 400, "invalid_request", None),
    ("content-nested-100000",
     b'{"model":"fake-model","messages":[{"role":"user","content":' + nested(100_000) + b"}]}",
     400, "invalid_request", None),
    ("content-nested-300",  # orjson reads it, but could not write it upstream
     b'{"model":"fake-model","messages":[{"role":"user","content":' + nested(300) + b"}]}",
     400, "invalid_value", None),
    ("role-nested-1000", ROLE_DEEP, 400, "invalid_value", None),  # too deep to relay
    ("huge-messages-bad-last",
     chat_body(model="echo",
               messages=[{"role": "user", "content": "x"}] * 20_000 + [{"role": "robot"}]),
     400, "invalid_value", "messages[20000].role"),
    ("model-missing", chat_body(model=...), 400, "missing_required_parameter", "model"),
    ("model-null", chat_body(model=None), 400, "missing_required_parameter", "model"),
    ("model-int", chat_body(model=4), 400, "invalid_type", "model"),
    ("model-empty", chat_body(model=""), 400, "invalid_type", "model"),
    ("model-list", chat_body(model=["echo"]), 400, "invalid_type", "model"),
    ("model-nul", chat_body(model="fake\x00model"), 400, "invalid_value", "model"),
    ("model-unknown", chat_body(model="no-such-model"), 404, "model_not_found", "model"),
    ("messages-missing", chat_body(messages=...), 400, "missing_required_parameter",
     "messages"),
    ("messages-string", chat_body(messages="hi"), 400, "invalid_type", "messages"),
    ("messages-object", chat_body(messages={"role": "user"}), 400, "invalid_type", "messages"),
    ("messages-empty", chat_body(messages=[]), 400, "invalid_value", "messages"),
    ("message-string", chat_body(messages=["hi"]), 400, "invalid_type", "messages[0]"),
    ("message-null", chat_body(messages=[None]), 400, "invalid_type", "messages[0]"),
    ("message-list", chat_body(messages=[OK_MESSAGES]), 400, "invalid_type", "messages[0]"),
    ("role-missing", chat_body(model="echo", messages=[{"content": "x"}]), 400, "invalid_value",
     "messages[0].role"),
    ("role-int", chat_body(model="echo", messages=[{"role": 1}]), 400, "invalid_value",
     "messages[0].role"),
    ("role-object", chat_body(model="echo", messages=[{"role": {"a": 1}}]), 400, "invalid_value",
     "messages[0].role"),
    ("role-unknown", chat_body(model="echo", messages=[*OK_MESSAGES, {"role": "robot"}]), 400,
     "invalid_value", "messages[1].role"),
    ("stream-string", chat_body(stream="yes"), 400, "invalid_type", "stream"),
    ("stream-int", chat_body(stream=1), 400, "invalid_type", "stream"),
    ("max-tokens-zero", chat_body(max_tokens=0), 400, "invalid_value", "max_tokens"),
    ("max-tokens-negative", chat_body(max_tokens=-5), 400, "invalid_value", "max_tokens"),
    ("max-tokens-string", chat_body(max_tokens="10"), 400, "invalid_type", "max_tokens"),
    ("max-tokens-bool", chat_body(max_tokens=True), 400, "invalid_type", "max_tokens"),
    ("max-tokens-fraction", chat_body(max_tokens=1.5), 400, "invalid_type", "max_tokens"),
    ("max-completion-tokens-zero", chat_body(max_completion_tokens=0), 400, "invalid_value",
     "max_completion_tokens"),
    ("max-completion-tokens-list", chat_body(max_completion_tokens=[1]), 400, "invalid_type",
     "max_completion_tokens"),
    ("stream-options-string", chat_body(stream=True, stream_options="usage"), 400,
     "invalid_type", "stream_options"),
    ("stream-options-list", chat_body(stream_options=[]), 400, "invalid_type",
     "stream_options"),
    ("include-usage-string", chat_body(stream=True, stream_options={"include_usage": "yes"}),
     400, "invalid_type", "stream_options.include_usage"),
    ("session-id-int", chat_body(session_id=7), 400, "invalid_type", "session_id"),
    ("session-id-empty", chat_body(session_id=""), 400, "invalid_type", "session_id"),
    ("session-id-nul", chat_body(session_id="sess_\x00"), 400, "invalid_value", "session_id"),
    ("session-id-unknown", chat_body(session_id="sess_nope"), 404, "session_not_found",
     "session_id"),
    ("session-id-unicode", chat_body(session_id="séance-☃"), 404, "session_not_found",
     "session_id"),
]  # fmt: skip


@by_id(("body", "status", "code", "param"), CHAT_CASES)
async def test_bad_chat_request_is_a_clear_4xx_and_stores_nothing(
    gateway, upstream, body, status, code, param
):
    assert len(body) < BODY_LIMIT
    error = assert_error(await send(gateway, "POST", CHAT, body), status, code, param)
    assert error["message"]  # said in words, not a traceback
    await assert_nothing_stored(gateway, upstream, [status])


async def test_body_over_the_limit_is_413_logged_rejected(gateway, upstream):
    body = chat_body(messages=[{"role": "user", "content": "x" * BODY_LIMIT}])
    got = await send(gateway, "POST", CHAT, body)
    assert_error(got, 413, "request_too_large")
    assert got[1]["x-ratelimit-limit-requests"]  # rate-limit headers on every chat response
    await assert_nothing_stored(gateway, upstream, [413])


async def test_huge_valid_messages_array_is_answered_not_stored(gateway, upstream):
    messages = [{"role": "user", "content": f"m{i}"} for i in range(20_000)]
    body = orjson.dumps({"model": "echo", "messages": messages})
    status, _, raw = await send(gateway, "POST", CHAT, body)
    assert status == 200, raw[:300]
    assert orjson.loads(raw)["choices"][0]["message"]["content"] == "m19999"
    assert upstream.received == [] and await table(gateway, "SELECT id FROM ai_message") == []


async def test_integral_float_counts_as_an_integer(gateway, upstream):
    status, _, raw = await send(gateway, "POST", CHAT, chat_body(model="echo", max_tokens=16.0))
    assert status == 200, raw


SESSION_BODY_CASES = [
    ("invalid-utf8", b'{"title": "\xc3\x28"}', 400, "invalid_request", None),
    ("array", b"[1]", 400, "invalid_request", None),
    ("unknown-field", b'{"title": "t", "owner": "bob"}', 400, "unknown_parameter", "owner"),
    ("title-int", b'{"title": 5}', 400, "invalid_type", "title"),
    ("title-object", b'{"title": {"a": 1}}', 400, "invalid_type", "title"),
    ("title-too-long", orjson.dumps({"title": "t" * 257}), 400, "invalid_value", "title"),
    ("title-nul", orjson.dumps({"title": "a\x00b"}), 400, "invalid_value", "title"),
    ("model-bool", b'{"model": true}', 400, "invalid_type", "model"),
    ("model-unknown", b'{"model": "no-such-model"}', 404, "model_not_found", "model"),
]


@by_id(("body", "status", "code", "param"), SESSION_BODY_CASES)
async def test_bad_session_create_stores_nothing(gateway, upstream, body, status, code, param):
    assert_error(await send(gateway, "POST", "/v1/ai/sessions", body), status, code, param)
    await assert_nothing_stored(gateway, upstream, [])


PATCH_CASES = [
    ("unknown-field", b'{"model": "echo"}', "unknown_parameter", "model"),
    ("status-unknown", b'{"status": "deleted"}', "invalid_value", "status"),
    ("status-int", b'{"status": 1}', "invalid_type", "status"),
    ("title-list", b'{"title": ["a"]}', "invalid_type", "title"),
    ("not-json", b"{title: 1}", "invalid_request", None),
]


@by_id(("body", "code", "param"), PATCH_CASES)
async def test_bad_session_update_changes_nothing(gateway, body, code, param):
    session = await new_session(gateway, b'{"title": "keep"}')
    path = f"/v1/ai/sessions/{session['id']}"
    assert_error(await send(gateway, "PATCH", path, body), 400, code, param)
    status, _, raw = await send(gateway, "GET", path)
    assert status == 200 and orjson.loads(raw) == session


ADMIN_CASES = [
    ("POST", "/admin/keys", b"{}", "missing_required_parameter", "user"),
    ("POST", "/admin/keys", b'{"user": ""}', "missing_required_parameter", "user"),
    ("POST", "/admin/keys", b'{"user": 5}', "invalid_type", "user"),
    ("POST", "/admin/keys", orjson.dumps({"user": "u" * 129}), "invalid_value", "user"),
    ("POST", "/admin/keys", b'{"user": "u", "tier": "gold"}', "invalid_value", "tier"),
    ("POST", "/admin/keys", b'{"user": "u", "tier": 1}', "invalid_type", "tier"),
    ("POST", "/admin/keys", b'{"user": "u", "name": []}', "invalid_type", "name"),
    ("POST", "/admin/keys", b'{"user": "u", "key": "sk-mine"}', "unknown_parameter", "key"),
    ("POST", "/admin/keys", b'{"user": "u\\u0000"}', "invalid_value", "user"),
    ("POST", "/admin/keys", b"\xff", "invalid_request", None),
    ("PUT", "/admin/users/carol/quota", b'{"rpm": -1}', "invalid_value", "rpm"),
    ("PUT", "/admin/users/carol/quota", b'{"rpm": "60"}', "invalid_type", "rpm"),
    ("PUT", "/admin/users/carol/quota", b'{"rpm": true}', "invalid_type", "rpm"),
    ("PUT", "/admin/users/carol/quota", b'{"rpm": 2147483648}', "invalid_value", "rpm"),
    ("PUT", "/admin/users/carol/quota", b'{"tpd": 1e13}', "invalid_value", "tpd"),
    ("PUT", "/admin/users/carol/quota", b'{"tpd": 0.5}', "invalid_type", "tpd"),
    ("PUT", "/admin/users/carol/quota", b'{"tier": "gold"}', "invalid_value", "tier"),
    ("PUT", "/admin/users/carol/quota", b'{"burst": 5}', "unknown_parameter", "burst"),
    ("PUT", "/admin/users/carol/quota", b'"pro"', "invalid_request", None),
    ("PUT", "/admin/users/%00/quota", b'{"rpm": 1}', "invalid_value", None),
    ("GET", "/admin/usage?day=yesterday", None, "invalid_value", "day"),
    ("GET", "/admin/usage?day=20260131", None, "invalid_value", "day"),
    ("GET", "/admin/usage?day=2026-02-30", None, "invalid_value", "day"),
]


@pytest.mark.parametrize(("method", "path", "body", "code", "param"), ADMIN_CASES)
async def test_bad_admin_request_stores_nothing(gateway, upstream, method, path, body, code, param):
    got = await send(gateway, method, path, body, key=ADMIN_KEY)
    assert_error(got, 400, code, param)
    await assert_nothing_stored(gateway, upstream, [])


LONG = "x" * 4000
BAD_IDS = [LONG, quote("séance-☃-ünïcode"), "..", "%2E%2E", "..%2F..%2Fetc", "%F0%9F%92%A5" * 50]


@pytest.mark.parametrize("bad", BAD_IDS, ids=["long", "unicode", "dotdot", "dotdot-encoded",
                                             "traversal", "emoji"])  # fmt: skip
async def test_path_ids_that_are_not_ids_are_404s(gateway, upstream, bad):
    created = await new_session(gateway)
    for method, path in [
        ("GET", f"/v1/ai/sessions/{bad}"),
        ("PATCH", f"/v1/ai/sessions/{bad}"),
        ("DELETE", f"/v1/ai/sessions/{bad}"),
        ("GET", f"/v1/ai/sessions/{bad}/messages"),
    ]:
        body = b'{"title": "x"}' if method == "PATCH" else None
        assert_error(
            await send(gateway, method, path, body), 404, "session_not_found", "session_id"
        )
    assert_error(await send(gateway, "GET", f"/v1/models/{bad}"), 404, "model_not_found", "model")
    got = await send(gateway, "DELETE", f"/admin/keys/{bad}", key=ADMIN_KEY)
    assert_error(got, 404, "not_found", "key")
    status, _, raw = await send(gateway, "GET", f"/v1/ai/sessions/{created['id']}")
    assert status == 200 and orjson.loads(raw) == created  # the real session is untouched


async def test_nul_in_a_path_id_is_a_400(gateway):
    got = await send(gateway, "GET", "/v1/ai/sessions/sess_%00")
    assert_error(got, 400, "invalid_value", None)


BAD_LIMITS = [
    ("-1", "invalid_value"), ("0", "invalid_value"), ("101", "invalid_value"),
    ("1" + "0" * 40, "invalid_value"), ("9" * 5000, "invalid_value"),
    ("abc", "invalid_type"), ("1.5", "invalid_type"), ("1e3", "invalid_type"),
    ("%205", "invalid_type"), ("1_0", "invalid_type"), ("%D9%A3", "invalid_type"),
    ("0x10", "invalid_type"), ("-", "invalid_type"),
]  # fmt: skip


@pytest.mark.parametrize(("limit", "code"), BAD_LIMITS, ids=[b[0][:12] for b in BAD_LIMITS])
async def test_bad_pagination_limit_is_a_400(gateway, limit, code):
    created = await new_session(gateway)
    for path in ("/v1/ai/sessions", f"/v1/ai/sessions/{created['id']}/messages"):
        got = await send(gateway, "GET", f"{path}?limit={limit}")
        assert_error(got, 400, code, "limit")


async def test_bad_session_status_filter_is_a_400(gateway):
    got = await send(gateway, "GET", "/v1/ai/sessions?status=deleted")
    assert_error(got, 400, "invalid_value", "status")


async def test_unknown_cursors_give_empty_pages(gateway):
    created = await new_session(gateway)
    for path in (
        f"/v1/ai/sessions?after={LONG}",
        f"/v1/ai/sessions/{created['id']}/messages?before=msg_{quote('☃')}",
    ):
        status, _, raw = await send(gateway, "GET", path)
        assert status == 200 and orjson.loads(raw)["data"] == [], raw


def endpoint_body(**fields) -> bytes:
    return orjson.dumps({k: v for k, v in fields.items() if v is not ...})


EMBED, LEGACY, RESPOND = "/v1/embeddings", "/v1/completions", "/v1/responses"
ENDPOINT_CASES = [
    # (id, path, raw body, status, code, param)
    ("embed-input-missing", EMBED, endpoint_body(model="echo"), 400,
     "missing_required_parameter", "input"),
    ("embed-input-empty", EMBED, endpoint_body(model="echo", input=""), 400, "invalid_value",
     "input"),
    ("embed-input-number", EMBED, endpoint_body(model="echo", input=5), 400, "invalid_type",
     "input"),
    ("embed-input-mixed", EMBED, endpoint_body(model="echo", input=["a", 1]), 400,
     "invalid_value", "input"),
    ("embed-input-empty-string-in-list", EMBED, endpoint_body(model="echo", input=["a", ""]),
     400, "invalid_value", "input"),
    ("embed-token-negative", EMBED, endpoint_body(model="echo", input=[1, -2]), 400,
     "invalid_value", "input"),
    ("embed-token-bool", EMBED, endpoint_body(model="echo", input=[True]), 400, "invalid_value",
     "input"),
    ("embed-token-fraction", EMBED, endpoint_body(model="echo", input=[[1.5]]), 400,
     "invalid_value", "input"),
    ("embed-token-list-empty", EMBED, endpoint_body(model="echo", input=[[1], []]), 400,
     "invalid_value", "input"),
    ("embed-too-many", EMBED, endpoint_body(model="echo", input=["a"] * 2049), 400,
     "invalid_value", "input"),
    ("embed-dimensions-huge", EMBED, endpoint_body(model="echo", input="a", dimensions=10**9),
     400, "invalid_value", "dimensions"),
    ("embed-dimensions-zero", EMBED, endpoint_body(model="echo", input="a", dimensions=0), 400,
     "invalid_value", "dimensions"),
    ("embed-encoding-hex", EMBED, endpoint_body(model="echo", input="a", encoding_format="hex"),
     400, "invalid_value", "encoding_format"),
    ("embed-model-unknown", EMBED, endpoint_body(model="nope", input="a"), 404,
     "model_not_found", "model"),
    ("legacy-echo-model", LEGACY, endpoint_body(model="echo", prompt="x"), 400,
     "model_not_supported", "model"),
    ("legacy-prompt-missing", LEGACY, endpoint_body(model="fake-model"), 400,
     "missing_required_parameter", "prompt"),
    ("legacy-stream-options-string", LEGACY,  # was a 500 (a TypeError merging the string)
     endpoint_body(model="fake-model", prompt="x", stream=True, stream_options="usage"), 400,
     "invalid_type", "stream_options"),
    ("legacy-stream-options-list", LEGACY,
     endpoint_body(model="fake-model", prompt="x", stream=True, stream_options=[1]), 400,
     "invalid_type", "stream_options"),
    ("legacy-include-usage-string", LEGACY,
     endpoint_body(model="fake-model", prompt="x", stream_options={"include_usage": "yes"}),
     400, "invalid_type", "stream_options.include_usage"),
    ("legacy-prompt-nested-300", LEGACY,  # orjson reads it, but could not write it upstream
     b'{"model":"fake-model","prompt":' + nested(300) + b"}", 400, "invalid_value", None),
    ("respond-input-missing", RESPOND, endpoint_body(model="echo"), 400,
     "missing_required_parameter", "input"),
    ("respond-max-output-tokens-zero", RESPOND,
     endpoint_body(model="fake-model", input="x", max_output_tokens=0), 400, "invalid_value",
     "max_output_tokens"),
    ("respond-background", RESPOND, endpoint_body(model="echo", input="x", background=True),
     400, "unsupported_parameter", "background"),
    ("respond-previous-unknown", RESPOND,
     endpoint_body(model="echo", input="x", previous_response_id="resp_nope"), 400,
     "unsupported_parameter", "previous_response_id"),
    ("respond-tool-parameters-nested-300", RESPOND,
     b'{"model":"echo","input":"x","tools":[{"type":"function","name":"f","parameters":'
     + nested(300) + b"}]}", 400, "invalid_value", None),
]  # fmt: skip


@by_id(("path", "body", "status", "code", "param"), ENDPOINT_CASES)
async def test_bad_request_to_a_new_endpoint_is_a_clear_4xx(
    gateway, upstream, path, body, status, code, param
):
    """Refused before any upstream call, logged `rejected`, with the rate-limit headers."""
    got = await send(gateway, "POST", path, body)
    assert_error(got, status, code, param)
    assert got[1]["x-ratelimit-limit-requests"]
    await assert_nothing_stored(gateway, upstream, [status])


INPUT_ITEMS_CASES = [
    ("order=sideways", "invalid_value", "order"),
    ("limit=0", "invalid_value", "limit"),
    ("limit=101", "invalid_value", "limit"),
    ("limit=ten", "invalid_type", "limit"),
]


@pytest.mark.parametrize(("query", "code", "param"), INPUT_ITEMS_CASES)
async def test_bad_input_items_query_is_a_400(gateway, query, code, param):
    got = await send(gateway, "GET", f"/v1/responses/resp_x/input_items?{query}")
    assert_error(got, 400, code, param)


async def test_input_items_pages_a_stored_response(gateway):
    """A bridged response's items: newest first by default, `limit` and `after` page them."""
    turns = [{"role": "user", "content": f"turn {i}"} for i in range(3)]
    status, _, raw = await send(gateway, "POST", RESPOND, endpoint_body(model="echo", input=turns))
    assert status == 200, raw
    response_id = orjson.loads(raw)["id"]
    path = f"/v1/responses/{response_id}/input_items"
    status, _, raw = await send(gateway, "GET", f"{path}?limit=2")
    page = orjson.loads(raw)
    texts = [item["content"][0]["text"] for item in page["data"]]
    assert status == 200 and texts == ["turn 2", "turn 1"] and page["has_more"] is True
    status, _, raw = await send(gateway, "GET", f"{path}?limit=2&after={page['last_id']}")
    rest = orjson.loads(raw)
    assert [item["content"][0]["text"] for item in rest["data"]] == ["turn 0"]
    assert rest["has_more"] is False and rest["first_id"] == rest["last_id"]
    status, _, raw = await send(gateway, "GET", f"{path}?order=asc")
    assert [i["content"][0]["text"] for i in orjson.loads(raw)["data"]] == [
        t["content"] for t in turns
    ]


async def test_bridged_response_ids_do_not_follow_the_request_id(gateway):
    """Two requests with one X-Request-Id get two responses, each retrievable."""
    ids = []
    for text in ("first", "second"):
        url = yarl.URL(gateway.url + RESPOND)
        headers = {**bearer(USER_KEY), "X-Request-Id": "same-id"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(url, json={"model": "echo", "input": text}, headers=headers) as resp,
        ):
            assert resp.status == 200
            ids.append((await resp.json())["id"])
    assert ids[0] != ids[1]
    for response_id, text in zip(ids, ("first", "second"), strict=True):
        status, _, raw = await send(gateway, "GET", f"/v1/responses/{response_id}")
        assert status == 200
        assert orjson.loads(raw)["output"][0]["content"][0]["text"] == text


async def test_integral_floats_count_as_integers_for_embeddings(gateway):
    """JSON Schema's integers: `dimensions: 30.0` and token id 1.0 work (30.0 was a 500)."""
    vectors = []
    for tokens, dimensions in (([[1.0, 2], [3]], 30.0), ([[1, 2], [3]], 30)):
        body = endpoint_body(model="echo", input=tokens, dimensions=dimensions)
        status, _, raw = await send(gateway, "POST", EMBED, body)
        assert status == 200, raw
        vectors.append([d["embedding"] for d in orjson.loads(raw)["data"]])
    assert [len(v) for v in vectors[0]] == [30, 30] and vectors[0] == vectors[1]

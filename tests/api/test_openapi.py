"""The OpenAPI document: valid 3.1, in step with the routes the app registers, and complete about
security, errors and headers; served at /openapi.json and rendered offline at /docs."""

from __future__ import annotations

import re
import tomllib
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import aiohttp
import orjson
import pytest
from openapi_spec_validator import validate

from gateway import errors
from gateway.adapters.capabilities import LISTED
from gateway.config import parse
from gateway.openapi import RPM_MAX, TPD_MAX, build_document
from gateway.openapi.endpoint_schemas import MAX_DIMENSIONS, MAX_INPUTS, MAX_TOKEN_ID
from gateway.translate.messages.errors import anthropic_error_type
from gateway.validation import MAX_TOKEN_ID as TOKEN_ID_LIMIT
from gateway.web import admin, embeddings
from gateway.web.app import create_app
from gateway.web.docs import ASSETS
from tests.support.gateway import base_config

ROOT = Path(__file__).resolve().parents[2]
METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
ANTHROPIC = ("/v1/messages", "/v1/messages/count_tokens")
ENDPOINTS = {  # proxied path -> the request log's `endpoint`
    "/v1/chat/completions": "chat",
    "/v1/embeddings": "embeddings",
    "/v1/completions": "completions",
    "/v1/responses": "responses",
}
PROXIED = list(ENDPOINTS)
ERROR_BY_STATUS = {
    400: errors.InvalidRequest,
    401: errors.InvalidApiKey,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    409: errors.Conflict,
    413: errors.RequestTooLarge,
    429: errors.RateLimited,
    502: errors.ProviderError,
    503: errors.ServiceUnavailable,
    504: errors.ProviderTimeout,
}


@pytest.fixture
def config(tmp_path):
    return parse(base_config("http://127.0.0.1:9/v1", tmp_path), "test-config", {})


@pytest.fixture
def document(config) -> dict:
    return build_document(tiers=config.quota.tiers)


def operations(document: dict) -> dict[tuple[str, str], dict]:
    return {
        (method.upper(), path): op
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def registered_routes(config) -> set[tuple[str, str]]:
    """(method, path) of every route; the HEAD aiohttp adds beside each GET is not an operation."""
    app = create_app(config)
    routes = {(r.method, r.resource.canonical) for r in app.router.routes()}
    return {(m, p) for m, p in routes if not (m == "HEAD" and ("GET", p) in routes)}


def test_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1.")
    validate(document)


def test_document_and_registered_routes_do_not_drift(config, document):
    documented = set(operations(document))
    registered = registered_routes(config)
    assert registered - documented == set(), "routes missing from gateway/openapi/"
    assert documented - registered == set(), "documented operations with no route"
    # + governance (PATCH key, 5 on teams, spend, PATCH user quota), console, sign-in and audit,
    # GET /admin/mcp (/mcp itself is registered only when mcp_servers is configured)
    assert len(documented) == 30 + 8 + 7 + 6 + 1


def test_the_drift_check_sees_an_extra_on_either_side(config, document):
    app = create_app(config)
    app.router.add_delete("/v1/models/{model}", lambda request: None)
    routes = {(r.method, r.resource.canonical) for r in app.router.routes()}
    assert ("DELETE", "/v1/models/{model}") in routes - set(operations(document))
    document["paths"]["/v1/extra"] = {"get": {"responses": {}}}
    assert ("GET", "/v1/extra") in set(operations(document)) - registered_routes(config)


def test_security_follows_the_path(document):
    for (_, path), op in operations(document).items():
        if path in ANTHROPIC:  # Anthropic's SDKs send x-api-key; Bearer works too
            assert op["security"] == [{"UserKey": []}, {"AnthropicKey": []}], path
            assert "401" in op["responses"], path
        elif path.startswith("/v1/"):
            assert op["security"] == [{"UserKey": []}], path
            assert "401" in op["responses"], path
        elif path.startswith("/admin/"):
            assert op["security"] == [{"AdminKey": []}, {"ConsoleSession": []}], path
            assert op["responses"]["403"]["content"]["application/json"], path  # a role's limit
            assert {"401", "404"} <= set(op["responses"]), path  # 404: admin API disabled
        else:
            assert op["security"] == [], path  # health, metrics and this reference: no key
    schemes = document["components"]["securitySchemes"]
    assert schemes["UserKey"] == schemes["UserKey"] | {"type": "http", "scheme": "bearer"}
    assert schemes["AdminKey"] == schemes["AdminKey"] | {"type": "http", "scheme": "bearer"}
    anthropic = {"type": "apiKey", "in": "header", "name": "x-api-key"}
    assert schemes["AnthropicKey"] == schemes["AnthropicKey"] | anthropic


def test_every_response_has_request_id_and_errors_have_the_openai_shape(document):
    schemas = document["components"]["schemas"]
    for (method, path), op in operations(document).items():
        assert op["operationId"] and op["summary"], (method, path)
        for status, response in op["responses"].items():
            assert "X-Request-Id" in response["headers"], (method, path, status)
            if not status.isdigit() or int(status) < 400 or path == "/readyz":
                continue
            schema = response["content"]["application/json"]["schema"]
            if path in ANTHROPIC:
                assert_anthropic_error(schema, int(status))
                continue
            error = schema["properties"]["error"]
            assert schema["required"] == ["error"]
            assert set(error["required"]) == {"message", "type", "param", "code"}
            expected_type = ERROR_BY_STATUS[int(status)].type
            assert error["properties"]["type"] == {"type": "string", "const": expected_type}
            codes = error["properties"]["code"]["enum"]
            assert codes and f"`{codes[0]}`" in response["description"], (method, path, status)
    assert schemas["Error"]["required"] == ["error"]


def assert_anthropic_error(schema: dict, status: int) -> None:
    """Anthropic's shape, {"type": "error", "error": {"type", "message"}}, with the type the
    gateway's translator sends for this status."""
    assert schema["required"] == ["type", "error"]
    assert schema["properties"]["type"] == {"type": "string", "const": "error"}
    error = schema["properties"]["error"]
    assert error["required"] == ["type", "message"]
    assert error["properties"]["type"]["const"] == anthropic_error_type(status)


def test_operations_with_parameters_document_400_invalid_value(document):
    """A NUL in any path or query parameter is refused with 400 invalid_value."""
    for item in document["paths"].values():
        for method, op in item.items():
            if method not in METHODS:
                continue
            params = [*item.get("parameters", ()), *op.get("parameters", ())]
            if not any(p["in"] in ("path", "query") for p in params):
                continue  # header parameters are not the URL
            schema = op["responses"]["400"]["content"]["application/json"]["schema"]
            assert "invalid_value" in schema["properties"]["error"]["properties"]["code"]["enum"]


def test_chat_documents_session_id_rate_limit_headers_and_stream(document):
    chat = document["paths"]["/v1/chat/completions"]["post"]
    request = document["components"]["schemas"]["ChatCompletionRequest"]
    assert "session_id" in request["properties"] and request["required"] == ["model", "messages"]
    assert request.get("additionalProperties", True) is True  # other fields are forwarded
    rate = {f"x-ratelimit-{w}-{k}" for w in ("limit", "remaining", "reset")
            for k in ("requests", "tokens")}  # fmt: skip
    for status, response in chat["responses"].items():
        if status != "401":
            assert rate <= set(response["headers"]), status
    assert chat["responses"]["429"]["headers"].keys() >= {"Retry-After"}
    assert set(chat["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert {"502", "503", "504", "4XX"} <= set(chat["responses"])


def test_proxied_routes_document_rate_limit_headers_and_upstream_errors(document):
    rate = {f"x-ratelimit-{w}-{k}" for w in ("limit", "remaining", "reset")
            for k in ("requests", "tokens")}  # fmt: skip
    for path in PROXIED:
        op = document["paths"][path]["post"]
        assert {"400", "401", "404", "413", "429", "4XX", "502", "503", "504"} <= set(
            op["responses"]
        ), path
        for status, response in op["responses"].items():
            if status != "401":
                assert rate <= set(response["headers"]), (path, status)
        assert "Retry-After" in op["responses"]["429"]["headers"], path
        body = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        required = document["components"]["schemas"][body.rsplit("/", 1)[1]]["required"]
        assert required[0] == "model", path
    for path in ("/v1/completions", "/v1/responses"):
        assert set(document["paths"][path]["post"]["responses"]["200"]["content"]) == {
            "application/json", "text/event-stream"}  # fmt: skip


def test_request_log_endpoint_is_documented_for_every_proxied_route(document):
    """Each proxied operation says which `endpoint` its request-log row carries."""
    for path, endpoint in [*ENDPOINTS.items(), ("/v1/messages", "messages")]:
        assert f"`endpoint` `{endpoint}`" in document["paths"][path]["post"]["description"]
    assert "`endpoint`" in document["info"]["description"]


def test_models_document_their_capabilities(document):
    model = document["components"]["schemas"]["Model"]
    assert "capabilities" in model["required"]
    assert model["properties"]["capabilities"]["items"]["enum"] == list(LISTED)


def test_anthropic_routes_document_the_message_and_its_stream(document):
    create = document["paths"]["/v1/messages"]["post"]
    assert set(create["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    request = document["components"]["schemas"]["MessagesRequest"]
    assert request["required"] == ["model", "max_tokens", "messages"]
    assert {"system", "stream", "tools", "tool_choice", "stop_sequences", "temperature", "top_p",
            "metadata"} <= set(request["properties"])  # fmt: skip
    count = document["paths"]["/v1/messages/count_tokens"]["post"]["responses"]["200"]
    assert count["content"]["application/json"]["schema"]["$ref"].endswith("/InputTokens")
    assert {"403", "429"} <= set(
        document["paths"]["/v1/messages/count_tokens"]["post"]["responses"]
    )


def test_limits_and_tiers_match_the_code(config, document):
    assert (RPM_MAX, TPD_MAX) == (admin.RPM_MAX, admin.TPD_MAX)
    assert (MAX_INPUTS, MAX_DIMENSIONS, MAX_TOKEN_ID) == (
        embeddings.MAX_INPUTS, embeddings.MAX_DIMENSIONS, TOKEN_ID_LIMIT)  # fmt: skip
    tier = document["components"]["schemas"]["ApiKeyCreate"]["properties"]["tier"]
    assert tier["enum"] == [*config.quota.tiers, None]


def test_readyz_documents_its_503(document):
    responses = document["paths"]["/readyz"]["get"]["responses"]
    assert set(responses) == {"200", "503"}
    assert responses["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Readiness"
    }


async def get(url: str) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


async def test_openapi_json_is_served_without_a_key(gateway):
    status, media, body = await get(f"{gateway.url}/openapi.json")
    assert status == 200 and media.startswith("application/json")
    assert orjson.loads(body) == build_document(tiers=gateway.config.quota.tiers)


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]


async def test_docs_page_works_offline(gateway):
    status, media, page = await get(f"{gateway.url}/docs")
    assert status == 200 and media.startswith("text/html")
    parser = _Refs()
    parser.feed(page.decode())
    assert parser.refs, "the page loads its UI"
    for ref in parser.refs:
        assert not re.match(r"^(https?:)?//", ref), f"/docs must not load {ref} from outside"
        status, media, body = await get(f"{gateway.url}/{ref}")
        assert status == 200 and body, ref
    init = (await get(f"{gateway.url}/docs/docs.js"))[2].decode()
    assert "openapi.json" in init and "validatorUrl: null" in init  # no call to a validator
    for name, media_type in ASSETS.items():
        status, media, body = await get(f"{gateway.url}/docs/{name}")
        assert status == 200 and media.startswith(media_type) and body, name


async def test_unknown_docs_asset_is_an_openai_404(gateway):
    for name in ("nope.js", "..%2Fopenapi.py", "docs.html", "README.md"):
        status, media, body = await get(f"{gateway.url}/docs/{name}")
        assert status == 404 and media.startswith("application/json"), name
        assert orjson.loads(body)["error"]["code"] == "not_found"


def test_ui_assets_ship_as_package_data():
    """Every served file is in gateway/static or its console folder ui/, which pyproject's
    package-data globs take whole."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = data["tool"]["setuptools"]["package-data"]["gateway"]
    assert {"static/*", "static/ui/*"} <= set(globs)
    static = resources.files("gateway").joinpath("static")
    for name in [*ASSETS, "docs.html"]:
        assert static.joinpath(name).is_file(), name
    folders = [p for p in (ROOT / "gateway" / "static").iterdir() if not p.is_file()]
    assert [p.name for p in folders] == ["ui"]
    assert all(p.is_file() for p in folders[0].iterdir())  # no deeper folders

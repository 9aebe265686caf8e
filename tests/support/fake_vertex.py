"""A fake Google Vertex AI (a real aiohttp server on 127.0.0.1): the OAuth token endpoint of a
throw-away service account (it verifies the RS256 JWT assertion), Gemini's generateContent and
Claude's rawPredict / streamRawPredict on Vertex's URLs, each checking the bearer token."""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from multidict import CIMultiDict

from tests.support.fake_anthropic import Script, forced, message, stream_bytes
from tests.support.fake_gemini import GOOD_KEY, FakeGemini, google_error
from tests.support.gateway import base_config

PROJECT = "acme-prod"
LOCATION = "us-east5"
CLIENT_EMAIL = "gateway@acme-prod.iam.gserviceaccount.com"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
CLAUDE_VERSION = "vertex-2023-10-16"
# The audience of a service account's assertion: Google's token endpoint, whichever token_uri
# the assertion is posted to (google-auth and Google's docs alike).
AUDIENCE = "https://oauth2.googleapis.com/token"


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class ClaudeReceived:
    method: str  # rawPredict or streamRawPredict
    model: str
    headers: CIMultiDict[str]
    body: dict[str, Any]


class FakeVertex:
    """Serves Vertex AI for one project and location; tests set `script` (Claude), `gemini.
    behaviour` (Gemini) and `expires_in` (the tokens' lifetime in seconds)."""

    def __init__(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.public_key = key.public_key()
        self.gemini = FakeGemini()
        self.script = Script()
        self.claude: list[ClaudeReceived] = []
        self.streamed: list[bytes] = []
        self.issued: list[str] = []  # access tokens, in order
        self.revoked: set[str] = set()  # tokens refused from now on
        self.assertions: list[dict[str, Any]] = []  # the verified JWT claims of each token call
        self.expires_in = 3600
        self.refused: list[str] = []  # why requests were refused (bad token, bad assertion)
        self.server: TestServer | None = None

    @property
    def base_url(self) -> str:
        """What a provider's base_url is (Vertex's https://{location}-aiplatform.googleapis.com)."""
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    def service_account_file(self, directory: Path) -> Path:
        """A service-account JSON whose token_uri is this fake, as Google's console writes it."""
        path = directory / "service-account.json"
        path.write_bytes(
            orjson.dumps(
                {
                    "type": "service_account",
                    "project_id": PROJECT,
                    "private_key_id": "0123456789abcdef",
                    "private_key": self.private_key_pem,
                    "client_email": CLIENT_EMAIL,
                    "client_id": "1234567890",
                    "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                    "token_uri": self.token_uri,
                }
            )
        )
        return path

    async def start(self) -> FakeVertex:
        app = web.Application()
        app.router.add_post("/token", self._token)
        root = "/v1/projects/{project}/locations/{location}/publishers"
        app.router.add_post(root + "/google/models/{target}", self._google)
        app.router.add_post(root + "/anthropic/models/{target}", self._anthropic)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    # The OAuth token endpoint (RFC 7523 JWT bearer grant, as Google's service accounts use it)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        problem = self._check_assertion(form.get("grant_type"), form.get("assertion"))
        if problem is not None:
            self.refused.append(problem)
            return web.json_response(
                {"error": "invalid_grant", "error_description": problem}, status=400
            )
        token = f"ya29.fake-{len(self.issued) + 1}"
        self.issued.append(token)
        return web.json_response(
            {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        )

    def _check_assertion(self, grant_type: object, assertion: object) -> str | None:
        if grant_type != JWT_BEARER:
            return f"unsupported grant_type {grant_type!r}"
        if not isinstance(assertion, str) or assertion.count(".") != 2:
            return "the assertion is not a JWT"
        head, claims, signature = assertion.split(".")
        header = orjson.loads(_b64url_decode(head))
        if header.get("alg") != "RS256":
            return f"the assertion is signed with {header.get('alg')!r}, not RS256"
        try:
            self.public_key.verify(
                _b64url_decode(signature),
                f"{head}.{claims}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except Exception:
            return "the assertion's signature does not verify"
        body = orjson.loads(_b64url_decode(claims))
        now = time.time()
        if body.get("iss") != CLIENT_EMAIL:
            return f"iss is {body.get('iss')!r}"
        if body.get("aud") != AUDIENCE:
            return f"aud is {body.get('aud')!r}"
        if SCOPE not in str(body.get("scope", "")).split():
            return f"scope is {body.get('scope')!r}"
        if not (body.get("iat", 0) - 300 <= now < body.get("exp", 0)):
            return "the assertion has expired"
        self.assertions.append(body)
        return None

    # Vertex's model endpoints

    def _unauthorised(self, request: web.Request) -> web.Response | None:
        if (request.match_info["project"], request.match_info["location"]) != (
            PROJECT,
            LOCATION,
        ):
            return _google(404, "NOT_FOUND", "Publisher model not found in this project.")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.issued or token in self.revoked:
            self.refused.append(f"bearer {token!r}")
            return _google(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            )
        return None

    async def _google(self, request: web.Request) -> web.StreamResponse:
        refused = self._unauthorised(request)
        if refused is not None:
            return refused
        # The Gemini fake answers as Gemini does; it wants its API key, which Vertex replaces by
        # the bearer token checked above.
        headers = CIMultiDict(request.headers)
        headers["x-goog-api-key"] = GOOD_KEY
        return await self.gemini.handle(request.clone(headers=headers))

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        refused = self._unauthorised(request)
        if refused is not None:
            return refused
        model, _, method = request.match_info["target"].partition(":")
        body = orjson.loads(await request.read())
        self.claude.append(ClaudeReceived(method, model, CIMultiDict(request.headers), body))
        if method not in ("rawPredict", "streamRawPredict"):
            return _google(404, "NOT_FOUND", f"Method {method!r} not found.")
        if body.get("anthropic_version") != CLAUDE_VERSION:
            return _claude_error(400, "anthropic_version: vertex-2023-10-16 is required")
        if "model" in body:
            return _claude_error(400, "model: Extra inputs are not permitted")
        s = self.script
        if s.status != 200 and (s.fail_times == 0 or len(self.claude) <= s.fail_times):
            if s.status == 429:
                return _google(429, "RESOURCE_EXHAUSTED", "Quota exceeded for aiplatform.")
            return _claude_error(s.status, s.error_message)
        script = forced(s, body)
        if method == "rawPredict":
            return web.json_response(message(model, script))
        data = stream_bytes(model, script)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        step = s.split or len(data)
        for i in range(0, len(data), step):
            await response.write(data[i : i + step])
            await asyncio.sleep(0)
        self.streamed.append(data)
        await response.write_eof()
        return response


def _google(status: int, kind: str, text: str) -> web.Response:
    return web.Response(
        status=status, body=google_error(status, kind, text), content_type="application/json"
    )


def _claude_error(status: int, text: str) -> web.Response:
    error = {"type": "error", "error": {"type": "invalid_request_error", "message": text}}
    if status >= 500:
        error["error"]["type"] = "api_error"
    return web.Response(status=status, body=orjson.dumps(error), content_type="application/json")


def vertex_config(vertex: FakeVertex, upstream_url: str, tmp_path, **provider) -> dict:
    """A test config with provider `gcp` on the fake (its service-account file in `tmp_path`)
    and a Gemini and a Claude model, priced by the catalog."""
    config = base_config(upstream_url, tmp_path)
    config["providers"]["gcp"] = {
        "type": "vertex",
        "project": PROJECT,
        "location": LOCATION,
        "base_url": vertex.base_url,
        "credentials_file": str(vertex.service_account_file(tmp_path)),
        **provider,
    }
    # No prices: Claude and Gemini on Vertex are priced from the catalog.
    config["models"]["gemini-flash"] = {"provider": "gcp", "model": "gemini-2.5-flash"}
    config["models"]["claude-vertex"] = {"provider": "gcp", "model": "claude-sonnet-4-5@20250929"}
    return config

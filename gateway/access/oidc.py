"""The console's OpenID Connect client (SPEC 19): discovery from the issuer, the authorization
request (code flow with PKCE, state and nonce), the code exchange, and the ID token verified
against the provider's JWKS. The protocol work is authlib's; aiohttp does the HTTP.

Rules:
- Nothing here verifies a signature or a claim by hand: as authlib's own OpenID clients do, the
  signature is checked against the JWKS by joserfc (authlib's JOSE library; authlib.jose is
  deprecated in its favour) and the claims by authlib's OIDC CodeIDToken: issuer, audience
  (and azp), expiry, issue time, nonce and at_hash.
- Only asymmetric signing algorithms are accepted (a shared-secret HS256 token signed with the
  provider's public key must not pass), and never `none`.
- A token signed by a key the cached JWKS lacks refreshes the JWKS once (the provider rotated).
- This module is imported only when auth.oidc is configured (authlib loads with it).
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import orjson
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from ..config import OidcConfig

ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
              "EdDSA")  # fmt: skip
METADATA_TTL_S = 3600.0
LEEWAY_S = 60
HTTP_TIMEOUT_S = 10.0


class OidcError(Exception):
    """The provider could not be reached, answered badly, or its ID token did not verify."""


def new_pkce_verifier() -> str:
    """A PKCE code_verifier (RFC 7636: 43-128 unreserved characters)."""
    return str(generate_token(64))


class OidcClient:
    """One configured provider; its discovery document and JWKS are cached."""

    def __init__(self, config: OidcConfig, http: aiohttp.ClientSession):
        self.config = config
        self.http = http
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._jwks: KeySet | None = None

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
            async with self.http.get(url, timeout=timeout) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise OidcError(f"{url} answered {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as error:
            raise OidcError(f"{url}: {error or type(error).__name__}") from None
        try:
            found = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise OidcError(f"{url} did not answer JSON") from None
        if not isinstance(found, dict):
            raise OidcError(f"{url} did not answer a JSON object")
        return found

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (checked: it names this issuer)."""
        now = time.monotonic()
        if self._metadata is None or now - self._metadata_at > METADATA_TTL_S:
            url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
            found = await self._get_json(url)
            if found.get("issuer") != self.config.issuer:
                raise OidcError(f"the discovery document names issuer {found.get('issuer')!r}")
            for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(found.get(field), str):
                    raise OidcError(f"the discovery document has no {field}")
            self._metadata, self._metadata_at = found, now
        return self._metadata

    async def authorization_url(
        self, state: str, nonce: str, code_verifier: str, redirect_uri: str
    ) -> str:
        """Where to send the browser: the authorization request, with PKCE (S256)."""
        meta = await self.metadata()
        url: str = prepare_grant_uri(
            meta["authorization_endpoint"],
            self.config.client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=" ".join(self.config.scopes),
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(code_verifier),
            code_challenge_method="S256",
        )
        return url

    async def exchange(self, code: str, code_verifier: str, redirect_uri: str) -> dict[str, Any]:
        """The token endpoint's answer for an authorization code."""
        meta = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        auth = None
        if self.config.client_secret:  # client_secret_basic
            auth = aiohttp.BasicAuth(self.config.client_id, self.config.client_secret)
        else:  # a public client
            form["client_id"] = self.config.client_id
        try:
            timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
            async with self.http.post(
                meta["token_endpoint"], data=form, auth=auth, timeout=timeout,
                headers={"Accept": "application/json"},
            ) as resp:  # fmt: skip
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise OidcError(f"token endpoint: {error or type(error).__name__}") from None
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            answer = None
        if status != 200 or not isinstance(answer, dict):
            detail = answer.get("error") if isinstance(answer, dict) else None
            raise OidcError(f"the token endpoint refused the code ({status} {detail or ''})")
        if not isinstance(answer.get("id_token"), str):
            raise OidcError("the token endpoint sent no id_token")
        if not isinstance(answer.get("access_token"), str):
            answer.pop("access_token", None)
        return answer

    async def _key_set(self, refresh: bool) -> KeySet:
        if self._jwks is None or refresh:
            meta = await self.metadata()
            try:
                self._jwks = KeySet.import_key_set(await self._get_json(meta["jwks_uri"]))  # type: ignore[arg-type]
            except (ValueError, TypeError, KeyError, JoseError) as error:
                raise OidcError(f"the provider's JWKS is unusable: {error}") from None
        return self._jwks

    async def verify(
        self, id_token: str, nonce: str, access_token: str | None = None
    ) -> dict[str, Any]:
        """The ID token's claims, once authlib has verified its signature against the JWKS and
        its iss, aud (and azp), exp, iat and nonce."""
        meta = await self.metadata()
        offered = meta.get("id_token_signing_alg_values_supported") or ["RS256"]
        registry = JWSRegistry(algorithms=[a for a in offered if a in ASYMMETRIC])
        options = {
            "iss": {"essential": True, "value": self.config.issuer},
            "aud": {"essential": True, "value": self.config.client_id},
            "sub": {"essential": True},
            "nonce": {"essential": True},
        }
        params = {"nonce": nonce, "client_id": self.config.client_id}
        if access_token:
            params["access_token"] = access_token  # checks at_hash when the token carries one
        try:
            try:
                token = jwt.decode(id_token, await self._key_set(False), registry=registry)
            except InvalidKeyIdError:  # the provider rotated its keys: read the JWKS again
                token = jwt.decode(id_token, await self._key_set(True), registry=registry)
            claims = CodeIDToken(token.claims, token.header, options, params)
            claims.validate(now=int(time.time()), leeway=LEEWAY_S)
        except (JoseError, ValueError, TypeError, KeyError) as error:  # malformed, too
            raise OidcError(f"the ID token did not verify: {error}") from None
        return dict(claims)

"""The gateway's OpenID client (access/oidc.py) on real ID tokens from oidc-provider: a token
verifies for the client it was issued to, and is refused with the wrong audience, the wrong
nonce, a tampered payload or signature, or a signature from a key not in the provider's JWKS."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import orjson
import pytest

from gateway.access.oidc import OidcClient, OidcError, new_pkce_verifier
from gateway.config import OidcConfig
from tests.support.oidc_provider import (
    CLIENT_ID,
    CLIENT_SECRET,
    OTHER_CLIENT_ID,
    OidcProviderUnavailable,
    console_client,
    new_http,
    oidc_provider,
    walk,
)

REDIRECT = "http://127.0.0.1:9/callback"  # never reached: the walk stops at the redirect


def client_config(issuer: str, client_id: str) -> OidcConfig:
    return OidcConfig(
        issuer=issuer, client_id=client_id, client_secret=CLIENT_SECRET,
        scopes=("openid", "profile", "groups"),
    )  # fmt: skip


@pytest.fixture
async def issuer() -> AsyncIterator[str]:
    clients = [console_client(REDIRECT), console_client(REDIRECT, OTHER_CLIENT_ID)]
    try:
        provider = oidc_provider(clients)
        running = await provider.__aenter__()
    except OidcProviderUnavailable as error:
        pytest.skip(str(error))
    try:
        yield running.issuer
    finally:
        await provider.__aexit__(None, None, None)


async def issued(issuer: str, client_id: str, nonce: str) -> dict[str, Any]:
    """The token endpoint's answer for `client_id` after `ada` signs in with `nonce`."""
    async with aiohttp.ClientSession() as plain, new_http() as browser:
        client = OidcClient(client_config(issuer, client_id), plain)
        verifier = new_pkce_verifier()
        url = await client.authorization_url("some-state", nonce, verifier, REDIRECT)
        back = await walk(browser, url, REDIRECT, "ada")
        code = parse_qs(urlsplit(back).query)["code"][0]
        return await client.exchange(code, verifier, REDIRECT)


async def verify(issuer: str, client_id: str, token: str, nonce: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        return await OidcClient(client_config(issuer, client_id), http).verify(token, nonce)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    return dict(orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


async def test_a_real_token_verifies_for_its_own_client(issuer):
    tokens = await issued(issuer, CLIENT_ID, "n-1")
    claims = await verify(issuer, CLIENT_ID, tokens["id_token"], "n-1")
    assert (claims["sub"], claims["aud"], claims["groups"]) == ("ada", CLIENT_ID,
                                                                ["gw-admins", "staff"])  # fmt: skip


async def test_a_token_for_another_client_is_refused(issuer):
    tokens = await issued(issuer, OTHER_CLIENT_ID, "n-2")
    assert (await verify(issuer, OTHER_CLIENT_ID, tokens["id_token"], "n-2"))["sub"] == "ada"
    with pytest.raises(OidcError, match="aud"):
        await verify(issuer, CLIENT_ID, tokens["id_token"], "n-2")


async def test_the_wrong_nonce_is_refused(issuer):
    tokens = await issued(issuer, CLIENT_ID, "n-3")
    with pytest.raises(OidcError, match="nonce"):
        await verify(issuer, CLIENT_ID, tokens["id_token"], "another-nonce")


async def test_a_tampered_token_is_refused(issuer):
    token = (await issued(issuer, CLIENT_ID, "n-4"))["id_token"]
    head, _, sig = token.split(".")
    promoted = {**_claims(token), "groups": ["gw-admins"], "sub": "mallory"}
    with pytest.raises(OidcError):
        await verify(issuer, CLIENT_ID, f"{head}.{_b64(orjson.dumps(promoted))}.{sig}", "n-4")
    bad_sig = sig[:-4] + ("AAAA" if not sig.endswith("AAAA") else "BBBB")
    with pytest.raises(OidcError):
        await verify(issuer, CLIENT_ID, f"{head}.{token.split('.')[1]}.{bad_sig}", "n-4")
    unsigned = {"alg": "none", "typ": "JWT"}
    with pytest.raises(OidcError):
        await verify(issuer, CLIENT_ID, f"{_b64(orjson.dumps(unsigned))}.{token.split('.')[1]}.",
                     "n-4")  # fmt: skip


async def test_a_token_signed_by_a_stranger_key_is_refused(issuer):
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    claims = _claims((await issued(issuer, CLIENT_ID, "n-5"))["id_token"])
    stranger = RSAKey.generate_key(2048, parameters={"kid": "stranger"})
    forged = jwt.encode({"alg": "RS256", "kid": "stranger"}, claims, stranger)
    with pytest.raises(OidcError):
        await verify(issuer, CLIENT_ID, forged, "n-5")


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b", "a.b.c", "e30.e30.", "..", "x" * 5000])
async def test_garbage_is_refused_cleanly(issuer, token):
    with pytest.raises(OidcError):
        await verify(issuer, CLIENT_ID, token, "n")

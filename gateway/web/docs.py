"""GET /openapi.json (the API description) and GET /docs (Swagger UI, from package data).
Neither needs a key, and the page fetches nothing from outside the gateway: it works offline."""

from __future__ import annotations

from importlib import resources

import orjson
from aiohttp import web

from ..errors import NotFound
from ..openapi import build_document
from . import console
from .keys import SERVICES


class DocumentCache:
    """The serialised document, rebuilt only when the configured tiers change (SIGHUP reload)."""

    def __init__(self) -> None:
        self._tiers: tuple[str, ...] | None = None
        self._body = b""

    def get(self, tiers: tuple[str, ...]) -> bytes:
        if tiers != self._tiers:
            self._body = orjson.dumps(build_document(tiers=tiers))
            self._tiers = tiers
        return self._body


DOCUMENT: web.AppKey[DocumentCache] = web.AppKey("openapi_document", DocumentCache)

# The only files /docs/{asset} serves (an allow-list: no path from the URL reaches the disk).
ASSETS: dict[str, str] = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "docs.css": "text/css",
    "docs.js": "text/javascript",
    "swagger-ui.LICENSE": "text/plain",
    "swagger-ui.NOTICE": "text/plain",
    "swagger-ui-bundle.js.LICENSE.txt": "text/plain",
}
ASSET_CACHE = "public, max-age=3600"
# The console's policy (no inline script or style, nothing from outside the gateway), but
# Swagger UI's stylesheet draws its icons as data: SVG images.
CSP = console.CSP.replace("img-src 'self'", "img-src 'self' data:")
HEADERS = {**console.HEADERS, "Content-Security-Policy": CSP}


def _static(name: str) -> bytes:
    return resources.files("gateway").joinpath("static", name).read_bytes()


async def openapi_json(request: web.Request) -> web.Response:
    tiers = tuple(request.app[SERVICES].config.quota.tiers)
    return web.Response(body=request.app[DOCUMENT].get(tiers), content_type="application/json")


async def docs_page(request: web.Request) -> web.Response:
    return web.Response(
        body=_static("docs.html"), content_type="text/html", charset="utf-8", headers=HEADERS
    )


async def docs_asset(request: web.Request) -> web.Response:
    name = request.match_info["asset"]
    media = ASSETS.get(name)
    if media is None:
        raise NotFound(f"No asset named `{name[:100]}`.", param="asset")
    return web.Response(
        body=_static(name),
        content_type=media,
        charset="utf-8",
        headers={**HEADERS, "Cache-Control": ASSET_CACHE},
    )


def add_routes(app: web.Application) -> None:
    """Register /openapi.json, /docs and /docs/{asset}."""
    app[DOCUMENT] = DocumentCache()
    app.router.add_get("/openapi.json", openapi_json)
    app.router.add_get("/docs", docs_page)
    app.router.add_get("/docs/{asset}", docs_asset)

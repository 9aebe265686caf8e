"""GET /ui: the web console (SPEC 11), static files from the package (gateway/static/ui), served
with a strict Content-Security-Policy. The page itself needs no key: it asks for one and calls
the JSON API with it, so every file here is public and none holds a secret.

Rules:
- Only files that exist in the package folder are served, looked up by exact name: no path from
  the URL reaches the disk.
- `default-src 'self'`, no inline script or style, no frames, no plugins; the key the console is
  given lives in the tab's sessionStorage and travels only as an Authorization header.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

from aiohttp import web

from ..errors import NotFound, clip

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
MEDIA = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".html": "text/html",
    ".txt": "text/plain",
    ".LICENSE": "text/plain",
}
PAGE = "index.html"


def _folder() -> Traversable:
    return resources.files("gateway").joinpath("static", "ui")


def console_assets() -> dict[str, str]:
    """Every file /ui/{asset} serves, with its media type (the page itself is GET /ui)."""
    out = {}
    for entry in _folder().iterdir():
        media = next((m for suffix, m in MEDIA.items() if entry.name.endswith(suffix)), None)
        if entry.is_file() and media is not None and entry.name != PAGE:
            out[entry.name] = media
    return out


ASSETS: web.AppKey[dict[str, str]] = web.AppKey("console_assets", dict)


def _file(name: str, media: str) -> web.Response:
    charset = None if media.startswith("image/") else "utf-8"
    return web.Response(
        body=_folder().joinpath(name).read_bytes(),
        content_type=media,
        charset=charset,
        headers=HEADERS,
    )


async def console_page(request: web.Request) -> web.Response:
    return _file(PAGE, "text/html")


async def console_asset(request: web.Request) -> web.Response:
    name = request.match_info["asset"]
    media = request.app[ASSETS].get(name)
    if media is None:
        raise NotFound(f"No console file named `{clip(name, 100)}`.", param="asset")
    return _file(name, media)


def add_routes(app: web.Application) -> None:
    """Register GET /ui and GET /ui/{asset}."""
    app[ASSETS] = console_assets()
    app.router.add_get("/ui", console_page)
    # Every file name has a dot: /ui/login, /ui/session... (web/signin.py) are not files.
    app.router.add_get(r"/ui/{asset:[^/]*\.[^/]*}", console_asset)

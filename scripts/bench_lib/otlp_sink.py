"""A local OTLP/HTTP trace receiver for `scripts/bench --tracing`: accepts every export (200, an
empty ExportTraceServiceResponse) and counts requests and bytes, decoding nothing.

Run: python otlp_sink.py --port 4318   (GET /stats answers {"requests": n, "bytes": n})
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web


def app() -> web.Application:
    stats = {"requests": 0, "bytes": 0}

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        stats["requests"] += 1
        stats["bytes"] += len(body)
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def report(request: web.Request) -> web.Response:
        return web.json_response(stats)

    application = web.Application(client_max_size=64 * 1024 * 1024)
    application.router.add_post("/v1/traces", receive)
    application.router.add_get("/stats", report)
    return application


async def serve(port: int) -> None:
    runner = web.AppRunner(app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))

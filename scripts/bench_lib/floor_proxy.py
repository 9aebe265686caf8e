"""The bare minimum of an aiohttp proxy, for `scripts/bench --floor`: what aiohttp alone costs.

An aiohttp server whose one handler forwards the body to the same path on the upstream (every
endpoint alike) with an aiohttp client and relays the answer (whole, or chunk by chunk for a
stream) with no auth, limits, parsing, accounting or logging. The gateway is built on the same
two halves, so its CPU per request cannot go below this on the same machine.

Run: python floor_proxy.py --upstream http://127.0.0.1:9000 --port 9100
"""

from __future__ import annotations

import argparse
import asyncio

import aiohttp
from aiohttp import web


async def serve(upstream: str, host: str, port: int) -> None:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)

    async def relay(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        reply = await session.post(
            upstream + request.path_qs, data=body, headers={"Content-Type": "application/json"}
        )
        try:
            if reply.content_type != "text/event-stream":
                return web.Response(
                    status=reply.status, body=await reply.read(), content_type=reply.content_type
                )
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            while chunk := await reply.content.readany():
                await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            reply.release()

    app = web.Application()
    app.router.add_post("/{path:.*}", relay)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=2048).start()
    print(f"ready {port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await session.close()
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="the upstream's root URL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.upstream, args.host, args.port))
    else:
        uvloop.run(serve(args.upstream, args.host, args.port))


if __name__ == "__main__":
    main()

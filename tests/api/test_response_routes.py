"""GET/DELETE /v1/responses/{id}[/input_items] for a response an openai deployment made, as the
document describes them: asked of that deployment (with the query the gateway checked), its 4xx
passed through and its 5xx answered as 502 provider_error."""

from __future__ import annotations

import aiohttp
import orjson

from tests.support.clients import bearer
from tests.support.gateway import USER_KEY


async def send(gateway, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, gateway.url + path, json=body, headers=bearer(USER_KEY)) as resp,
    ):
        return resp.status, orjson.loads(await resp.read())


async def test_a_relayed_response_is_read_from_its_deployment(gateway, upstream):
    turns = [{"role": "user", "content": f"turn {i}"} for i in range(3)]
    status, created = await send(gateway, "POST", "/v1/responses", {"model": "fake-model",
                                                                    "input": turns})  # fmt: skip
    assert status == 200, created
    path = f"/v1/responses/{created['id']}"
    status, got = await send(gateway, "GET", path)
    assert status == 200 and got == created

    status, page = await send(gateway, "GET", f"{path}/input_items?limit=2&order=asc")
    assert status == 200 and [i["content"][0]["text"] for i in page["data"]] == ["turn 0", "turn 1"]
    assert page["has_more"] is True and upstream.received[-1].path.endswith("/input_items")

    upstream.behaviour.status = 500
    status, error = await send(gateway, "GET", path)
    assert status == 502 and error["error"]["code"] == "provider_error"

    upstream.behaviour.status = 200
    status, deleted = await send(gateway, "DELETE", path)
    assert status == 200 and deleted == {"id": created["id"], "object": "response.deleted",
                                         "deleted": True}  # fmt: skip
    status, error = await send(gateway, "GET", path)
    # The deployment's 404, in the gateway's documented shape.
    assert status == 404 and error["error"]["code"] == "not_found" and error["error"]["message"]

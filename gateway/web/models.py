"""GET /v1/models and /v1/models/{id}: OpenAI model objects built from the config.
Models whose provider has no api_key are listed with `"available": false`."""

from __future__ import annotations

import time

import orjson
from aiohttp import web

from ..config import ModelConfig
from ..errors import ModelNotFound, clip
from .keys import SERVICES

STARTED = int(time.time())


def _model_object(model: ModelConfig, available: bool) -> dict:
    return {
        "id": model.name,
        "object": "model",
        "created": STARTED,
        "owned_by": model.deployments[0].provider,
        "available": available,
    }


def _json(payload: dict) -> web.Response:
    return web.Response(body=orjson.dumps(payload), content_type="application/json")


async def list_models(request: web.Request) -> web.Response:
    router = request.app[SERVICES].router
    data = [
        _model_object(m, router.available(m)) for m in router.models.values() if not m.is_wildcard
    ]
    return _json({"object": "list", "data": data})


async def get_model(request: web.Request) -> web.Response:
    router = request.app[SERVICES].router
    name = request.match_info["model"]
    model = router.models.get(name)
    if model is None or model.is_wildcard:
        raise ModelNotFound(f"The model `{clip(name)}` does not exist.", param="model")
    return _json(_model_object(model, router.available(model)))

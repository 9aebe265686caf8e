"""GET /v1/models and /v1/models/{id}: OpenAI model objects built from the config, only those the
caller's key and team may use. Models whose provider has no api_key are listed with
`"available": false`; `capabilities` says which endpoints each model accepts."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..access.governance import may_use, team_of
from ..adapters.capabilities import listed_capabilities
from ..config import ModelConfig
from ..errors import ModelNotFound, clip
from ..routing import Router
from .keys import PRINCIPAL, SERVICES
from .respond import json_response
from .services import Services


def _model_object(router: Router, model: ModelConfig, created: int) -> dict[str, Any]:
    deployments = {
        (router.providers[d.provider].type, d.model)
        for d in model.deployments
        if d.provider in router.providers
    }
    return {
        "id": model.name,
        "object": "model",
        "created": created,
        "owned_by": model.deployments[0].provider,
        "available": router.available(model),
        "capabilities": listed_capabilities(deployments),
    }


def _usable(s: Services, request: web.Request, model: ModelConfig) -> bool:
    """A listed (not wildcard) model that the caller's key and team allow."""
    principal = request[PRINCIPAL]
    team = s.teams.get(team_of(principal, s.quotas.override_for(principal.user)))
    return not model.is_wildcard and may_use(model.name, principal, team)


async def list_models(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    router = s.router
    data = [
        _model_object(router, m, s.started)
        for m in router.models.values()
        if _usable(s, request, m)
    ]
    return json_response({"object": "list", "data": data})


async def get_model(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    name = request.match_info["model"]
    model = s.router.models.get(name)
    # A model the key may not use is not there for it, as in OpenAI's answer for such models.
    if model is None or not _usable(s, request, model):
        raise ModelNotFound(f"The model `{clip(name)}` does not exist.", param="model")
    return json_response(_model_object(s.router, model, s.started))

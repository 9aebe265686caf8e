"""Prices from the genai-prices catalog, for deployments whose model entry gives none. The
package is imported on the first lookup, so a config that prices every model never loads it."""

from __future__ import annotations

import functools
from decimal import Decimal
from importlib.metadata import version
from typing import Any

from .types import Prices, Rate

# The catalog's provider for each provider type; an `openai` server elsewhere (DeepSeek, a local
# vLLM) is found by its base URL next, then by the model id alone.
CATALOG_PROVIDERS = {
    "openai": "openai",
    "azure": "azure",
    "anthropic": "anthropic",
    "gemini": "google",
    "bedrock": "aws",  # the catalog knows Bedrock's model ids (anthropic.claude-..., amazon....)
    "vertex": "google",  # and Vertex's (gemini-..., claude-...@date)
}


def catalog_version() -> str:
    return f"genai-prices {version('genai-prices')}"


@functools.lru_cache(maxsize=4096)
def catalog_prices(provider_type: str, base_url: str, model: str) -> Prices | None:
    """The catalog's prices of `model` as served by this provider, or None when it has none."""
    if provider_type == "echo" or not model:
        return None
    import genai_prices

    nothing = genai_prices.Usage(input_tokens=0, output_tokens=0)
    lookups: list[dict[str, Any]] = [{"provider_api_url": base_url}, {}]
    if provider_type in CATALOG_PROVIDERS:
        lookups.insert(0, {"provider_id": CATALOG_PROVIDERS[provider_type]})
    for where in lookups:
        try:
            found = genai_prices.calc_price(nothing, model, **where)
        except (LookupError, ValueError):
            continue
        return _prices(found.model_price)
    return None


def _prices(price: Any) -> Prices:
    """The catalog's price of one model as Prices: a kind it leaves out costs what the catalog
    charges for it then (cache reads and writes as input, one-hour writes as writes)."""
    input_ = _rate(getattr(price, "input_mtok", None), Rate())
    write = _rate(getattr(price, "cache_write_mtok", None), input_)
    return Prices(
        input=input_,
        output=_rate(getattr(price, "output_mtok", None), Rate()),
        cached_input=_rate(getattr(price, "cache_read_mtok", None), input_),
        cache_write=write,
        cache_write_1h=_rate(getattr(price, "cache_write_1h_mtok", None), write),
        source=f"catalog {catalog_version()}",
    )


def _rate(value: Any, missing: Rate) -> Rate:
    if value is None:
        return missing
    tiers = getattr(value, "tiers", None)
    if tiers is None:
        return Rate(Decimal(value))
    return Rate(Decimal(value.base), tuple((int(t.start), Decimal(t.price)) for t in tiers))

"""Prices (SPEC 13): what a config entry's price fields mean, the genai-prices catalog read into
the same form, the exact cost of each token kind, and what check-config shows."""

from __future__ import annotations

from decimal import Decimal

import genai_prices
import pytest

from gateway.accounting.recorder import cost_usd
from gateway.accounting.tokens import Usage, normalised
from gateway.config import ConfigError, parse
from gateway.config.catalog import catalog_prices
from gateway.routing import DeploymentHealth, Router, describe_prices, unpriced_models
from gateway.serve.cli import routing_table

M = Decimal(1_000_000)


def config(models: dict, **extra):
    return parse(
        {
            "providers": {
                "claude": {"type": "anthropic", "api_key": "k"},
                "openai": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"},
                "local": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"},
                "echo": {"type": "echo"},
            },
            "models": models,
            **extra,
        },
        "test",
        {},
    )


def prices_of(cfg, name: str, upstream: str = ""):
    model = cfg.models[name]
    router = Router(cfg, DeploymentHealth(1, 0.0))
    d = model.deployments[0]
    return router.prices(model, d, upstream or d.model or model.name)


def test_missing_cache_prices_equal_the_input_price():
    cfg = config({"m": {"provider": "local", "model": "x", "input_price": 2, "output_price": 8}})
    p = prices_of(cfg, "m")
    assert (p.cached_input.base, p.cache_write.base, p.cache_write_1h.base) == (2, 2, 2)
    assert p.source == "config"
    usage = normalised(1_000, 10, cached=600, writes=300, writes_1h=100)
    assert cost_usd(p, usage) == (1_000 * Decimal(2) + 10 * Decimal(8)) / M


def test_every_kind_at_its_own_price_and_parts_never_billed_twice():
    cfg = config(
        {
            "m": {
                "provider": "local",
                "model": "x",
                "input_price": 3,
                "output_price": 15,
                "cached_input_price": "0.3",
                "cache_write_price": "3.75",
                "cache_write_1h_price": 6,
            }
        }
    )
    p = prices_of(cfg, "m")
    usage = normalised(11_200, 50, cached=10_000, writes=1_000, writes_1h=400, reasoning=20)
    expected = (200 * 3 + 10_000 * Decimal("0.3") + 600 * Decimal("3.75") + 400 * 6 + 50 * 15) / M
    assert cost_usd(p, usage) == expected
    # a provider claiming more cache reads than input: clipped, never a negative fresh count
    odd = normalised(100, 0, cached=500, writes=50)
    assert (odd.cached_tokens, odd.cache_write_tokens) == (100, 0)
    assert cost_usd(p, odd) == 100 * Decimal("0.3") / M


def test_long_context_prices_the_whole_request_above_the_threshold():
    cfg = config(
        {
            "m": {
                "provider": "local",
                "model": "x",
                "input_price": 1,
                "output_price": 2,
                "long_context": {"above_tokens": 1_000, "input_price": 4},
            }
        }
    )
    p = prices_of(cfg, "m")
    at_threshold = Usage(1_000, 10)
    above = Usage(1_001, 10)
    assert cost_usd(p, at_threshold) == (1_000 * 1 + 10 * 2) / M
    # output price left out of the tier: the base one; cache prices: the tier's input price
    assert cost_usd(p, above) == (1_001 * 4 + 10 * 2) / M
    assert p.cached_input.at(1_001) == 4 and p.input.highest == 4


def test_deployment_prices_win_over_the_model_entry():
    cfg = config(
        {
            "m": {
                "input_price": 1,
                "output_price": 1,
                "deployments": [
                    {"provider": "local", "model": "a", "input_price": 5, "output_price": 6},
                    {"provider": "openai", "model": "b"},
                ],
            }
        }
    )
    model = cfg.models["m"]
    router = Router(cfg, DeploymentHealth(1, 0.0))
    first, second = (router.prices(model, d, d.model) for d in model.deployments)
    assert (first.input.base, first.output.base) == (5, 6)
    assert (second.input.base, second.output.base) == (1, 1)


@pytest.mark.parametrize(
    ("provider_type", "model", "usage"),
    [
        ("anthropic", "claude-sonnet-4-5", (11_200, 50, 10_000, 1_000, 400)),
        ("anthropic", "claude-sonnet-4-5", (300_000, 500, 100_000, 20_000, 0)),  # tiered
        ("openai", "gpt-4o-mini", (5_000, 700, 4_000, 0, 0)),
        ("gemini", "gemini-2.5-pro", (250_000, 1_000, 50_000, 0, 0)),  # tiered
        ("openai", "deepseek-chat", (3_000, 100, 1_000, 0, 0)),  # found by model id alone
    ],
)
def test_catalog_prices_cost_what_genai_prices_says(provider_type, model, usage):
    prompt, output, reads, writes, writes_1h = usage
    prices = catalog_prices(provider_type, "http://127.0.0.1:9/v1", model)
    assert prices is not None and prices.source.startswith("catalog genai-prices ")
    ours = cost_usd(prices, normalised(prompt, output, reads, writes, writes_1h))
    kwargs = {"provider_id": {"gemini": "google"}.get(provider_type, provider_type)}
    if model == "deepseek-chat":
        kwargs = {}
    theirs = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=prompt,
            cache_read_tokens=reads,
            cache_write_tokens=writes,
            cache_write_1h_tokens=writes_1h,
            output_tokens=output,
        ),
        model,
        **kwargs,
    ).total_price
    assert ours == theirs.quantize(Decimal("0.000000001"))


def test_config_prices_override_the_catalog_and_the_catalog_can_be_off():
    models = {
        "priced": {"provider": "claude", "model": "claude-sonnet-4-5", "input_price": 1},
        "catalog": {"provider": "claude", "model": "claude-sonnet-4-5"},
        "nowhere": {"provider": "local", "model": "my-own-finetune"},
        "echo": {"provider": "echo"},
    }
    cfg = config(models)
    assert prices_of(cfg, "priced").input.base == 1
    assert prices_of(cfg, "catalog").input.base == 3
    assert unpriced_models(cfg) == ["nowhere"]  # echo costs nothing by design
    off = config(models, pricing={"catalog": False})
    assert not prices_of(off, "catalog").priced
    assert unpriced_models(off) == ["catalog", "nowhere"]


def test_check_config_shows_each_deployments_prices_and_their_source():
    cfg = config(
        {
            "priced": {
                "provider": "claude",
                "model": "claude-sonnet-4-5",
                "input_price": 3,
                "output_price": 15,
                "cached_input_price": "0.3",
            },
            "catalog": {"provider": "claude", "model": "claude-sonnet-4-5"},
            "nowhere": {"provider": "local", "model": "my-own-finetune"},
            "any/*": {"provider": "local"},
        }
    )
    table = "\n".join(routing_table(cfg))
    assert "priced claude: in 3 cached 0.3 write 3 write-1h 3 out 15 (config)" in table
    version = genai_prices.__version__
    assert "catalog claude: in 3 cached 0.3 write 3.75 write-1h 6 out 15; above 200000" in table
    assert f"(catalog genai-prices {version})" in table
    assert "nowhere local: none: cost 0" in table
    assert "any/* local: catalog, per upstream model" in table
    assert describe_prices(None) == "catalog, per upstream model"


def test_a_long_context_tier_needs_its_threshold_and_input_price():
    with pytest.raises(ConfigError, match="long_context"):
        config({"m": {"provider": "local", "model": "x", "long_context": {"input_price": 4}}})

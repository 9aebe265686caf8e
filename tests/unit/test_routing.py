"""Routing without I/O: weighted order, fallbacks within max_attempts, wildcard prefixes,
unconfigured providers, and deployment health (cooldown, half-open probe) on an injected clock."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from gateway.config import parse
from gateway.errors import ModelNotFound, ProviderNotConfigured
from gateway.routing import DeploymentHealth, Router


def config(models: dict, routing: dict | None = None):
    providers = {
        name: {"type": "openai", "base_url": f"http://{name}.test/v1", "api_key": "k"}
        for name in ("p1", "p2", "p3", "p4", "fb1", "fb2", "deepseek", "ds-special")
    }
    providers["nokey"] = {"type": "openai", "base_url": "http://nokey.test/v1", "api_key": ""}
    return parse({"providers": providers, "models": models, "routing": routing or {}}, "t", {})


def router(models: dict, routing: dict | None = None, seed: int = 7) -> Router:
    cfg = config(models, routing)
    health = DeploymentHealth(cfg.routing.cooldown_failures, cfg.routing.cooldown_s)
    return Router(cfg, health, random.Random(seed))


def ids(targets) -> list[str]:
    return [t.deployment_id for t in targets]


def trip(r: Router, deployment_id: str, now: float) -> None:
    """Fail a deployment until it cools down."""
    for _ in range(r.health.failures_to_cool):
        r.health.failure(deployment_id, now, "http_503")


# --- weights --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "weights",
    [(3, 1), (1, 2, 5), (1, 1, 1, 1)],
)
def test_first_choice_follows_weights(weights):
    providers = ["p1", "p2", "p3", "p4"][: len(weights)]
    r = router(
        {"m": {"deployments": [{"provider": p, "model": "x", "weight": w}
                               for p, w in zip(providers, weights, strict=True)]}}
    )  # fmt: skip
    runs = 4000
    first = Counter(r.plan("m", 0.0)[0].provider.name for _ in range(runs))
    total = sum(weights)
    for provider, weight in zip(providers, weights, strict=True):
        observed = first[provider] / runs
        assert observed == pytest.approx(weight / total, abs=0.025), (provider, observed)


def test_second_choice_is_the_other_deployments_by_weight():
    r = router(
        {"m": {"deployments": [{"provider": "p1", "model": "x", "weight": 8},
                               {"provider": "p2", "model": "x", "weight": 1},
                               {"provider": "p3", "model": "x", "weight": 1}]}},
        routing={"max_attempts": 3},
    )  # fmt: skip
    seconds = Counter()
    for _ in range(4000):
        plan = ids(r.plan("m", 0.0))
        assert sorted(plan) == ["p1/x", "p2/x", "p3/x"], "each deployment once"
        if plan[0] == "p1/x":
            seconds[plan[1]] += 1
    share = seconds["p2/x"] / (seconds["p2/x"] + seconds["p3/x"])
    assert share == pytest.approx(0.5, abs=0.05)


# --- plan shape -----------------------------------------------------------------------------

TWO_AND_FALLBACKS = {
    "big": {
        "deployments": [{"provider": "p1", "model": "big"}, {"provider": "p2", "model": "big"}],
        "fallbacks": ["small", "tiny"],
    },
    "small": {"deployments": [{"provider": "fb1", "model": "small"},
                              {"provider": "fb2", "model": "small"}]},
    "tiny": {"provider": "p3", "model": "tiny"},
}  # fmt: skip


def test_plan_lists_deployments_then_fallbacks_in_order():
    r = router(TWO_AND_FALLBACKS, {"max_attempts": 5})
    plan = r.plan("big", 0.0)
    assert sorted(ids(plan[:2])) == ["p1/big", "p2/big"]
    assert sorted(ids(plan[2:4])) == ["fb1/small", "fb2/small"]
    assert ids(plan[4:]) == ["p3/tiny"]
    assert [t.model.name for t in plan] == ["big", "big", "small", "small", "tiny"]


def test_max_attempts_reserves_one_slot_per_fallback():
    r = router(TWO_AND_FALLBACKS, {"max_attempts": 3})
    plan = r.plan("big", 0.0)
    assert [t.model.name for t in plan] == ["big", "small", "tiny"]
    r = router(TWO_AND_FALLBACKS, {"max_attempts": 4})
    assert [t.model.name for t in r.plan("big", 0.0)] == ["big", "big", "small", "tiny"]
    r = router(TWO_AND_FALLBACKS, {"max_attempts": 2})
    assert [t.model.name for t in r.plan("big", 0.0)] == ["big", "small"]
    r = router(TWO_AND_FALLBACKS, {"max_attempts": 1})
    assert [t.model.name for t in r.plan("big", 0.0)] == ["big"]


def test_spare_attempts_repeat_deployments_round_by_round_retries_before_fallbacks():
    models = {
        "solo": {"provider": "p1", "model": "solo", "fallbacks": ["tiny"]},
        "tiny": {"provider": "p3", "model": "tiny"},
    }
    r = router(models, {"max_attempts": 3})
    assert ids(r.plan("solo", 0.0)) == ["p1/solo", "p1/solo", "p3/tiny"]
    r = router(models, {"max_attempts": 4})
    assert ids(r.plan("solo", 0.0)) == ["p1/solo", "p1/solo", "p3/tiny", "p3/tiny"]
    assert ids(r.plan("tiny", 0.0)) == ["p3/tiny"] * 4


def test_a_deployment_shared_with_a_fallback_is_listed_once():
    models = {
        "a": {"deployments": [{"provider": "p1", "model": "x"}], "fallbacks": ["b"]},
        "b": {"deployments": [{"provider": "p1", "model": "x"}, {"provider": "p2", "model": "y"}]},
    }
    r = router(models, {"max_attempts": 2})
    assert ids(r.plan("a", 0.0)) == ["p1/x", "p2/y"]


def test_unconfigured_providers_are_skipped():
    models = {
        "m": {"deployments": [{"provider": "nokey", "model": "x", "weight": 100},
                              {"provider": "p1", "model": "x"}],
              "fallbacks": ["f"]},
        "f": {"provider": "nokey", "model": "y"},
    }  # fmt: skip
    r = router(models, {"max_attempts": 4})
    for _ in range(50):
        assert set(ids(r.plan("m", 0.0))) == {"p1/x"}


def test_fallback_serves_when_the_model_has_no_configured_provider():
    models = {"m": {"provider": "nokey", "model": "x", "fallbacks": ["f"]},
              "f": {"provider": "p2", "model": "y"}}  # fmt: skip
    r = router(models, {"max_attempts": 2})
    plan = r.plan("m", 0.0)
    assert ids(plan) == ["p2/y", "p2/y"] and plan[0].model.name == "f"
    assert r.available(r.models["m"])


def test_provider_not_configured_when_nothing_is_usable():
    models = {"m": {"provider": "nokey", "model": "x", "fallbacks": ["f"]},
              "f": {"provider": "nokey", "model": "y"}}  # fmt: skip
    r = router(models)
    with pytest.raises(ProviderNotConfigured) as err:
        r.plan("m", 0.0)
    assert err.value.status == 503 and err.value.code == "provider_not_configured"
    assert not r.available(r.models["m"])


# --- names and wildcards --------------------------------------------------------------------

WILDCARDS = {
    "deepseek/*": {"provider": "deepseek"},
    "deepseek/special/*": {"provider": "ds-special"},
    "deepseek/chat": {"provider": "p1", "model": "pinned-chat"},
    "plain": {"provider": "p2", "model": "plain-upstream"},
}


def test_wildcard_prefix_sends_the_rest_of_the_name_upstream():
    r = router(WILDCARDS)
    plan = r.plan("deepseek/deepseek-reasoner", 0.0)
    assert ids(plan[:1]) == ["deepseek/deepseek-reasoner"]
    assert plan[0].upstream_model == "deepseek-reasoner"
    assert plan[0].model.name == "deepseek/*"


def test_exact_name_beats_wildcard_and_longest_prefix_wins():
    r = router(WILDCARDS)
    assert r.plan("deepseek/chat", 0.0)[0].deployment_id == "p1/pinned-chat"
    special = r.plan("deepseek/special/v2", 0.0)[0]
    assert (special.provider.name, special.upstream_model) == ("ds-special", "v2")
    assert r.plan("plain", 0.0)[0].upstream_model == "plain-upstream"


@pytest.mark.parametrize("name", ["deepseek/", "deepseek/*", "deepseek", "nope", "plain/x"])
def test_unknown_names_are_model_not_found(name):
    with pytest.raises(ModelNotFound) as err:
        router(WILDCARDS).plan(name, 0.0)
    assert err.value.param == "model"


def test_fallback_may_name_a_model_served_by_a_wildcard():
    models = {**WILDCARDS, "m": {"provider": "p3", "model": "m", "fallbacks": ["deepseek/r1"]}}
    r = router(models, {"max_attempts": 2})
    plan = r.plan("m", 0.0)
    assert ids(plan) == ["p3/m", "deepseek/r1"]
    assert plan[1].upstream_model == "r1"


# --- health: cooldown, half-open, ordering ----------------------------------------------------

PAIR = {"m": {"deployments": [{"provider": "p1", "model": "x"}, {"provider": "p2", "model": "x"}]}}


def test_cooldown_starts_after_n_consecutive_failures_and_ends_after_cooldown_s():
    health = DeploymentHealth(failures_to_cool=3, cooldown_s=30)
    assert health.failure("d", 100.0) is False
    assert health.failure("d", 101.0) is False
    assert health.state("d", 101.0) == "healthy"
    assert health.failure("d", 102.0, "connect") is True
    assert health.state("d", 102.0) == "cooling_down" and not health.usable("d", 102.0)
    assert health.state("d", 131.9) == "cooling_down"
    assert health.state("d", 132.0) == "half_open" and health.usable("d", 132.0)


def test_a_success_in_between_resets_the_count():
    health = DeploymentHealth(failures_to_cool=2, cooldown_s=30)
    health.failure("d", 0.0)
    health.success("d")
    assert health.failure("d", 1.0) is False
    assert health.state("d", 1.0) == "healthy"


def test_half_open_admits_one_probe_then_closes_or_reopens():
    health = DeploymentHealth(failures_to_cool=2, cooldown_s=10)
    trip_at = 0.0
    health.failure("d", trip_at)
    health.failure("d", trip_at)
    assert health.state("d", 10.0) == "half_open"
    health.begin("d", 10.0)
    assert health.state("d", 10.5) == "probing" and not health.usable("d", 10.5)
    assert health.failure("d", 11.0) is True, "a failed probe reopens the cooldown at once"
    assert health.state("d", 20.9) == "cooling_down"
    assert health.state("d", 21.0) == "half_open"
    health.begin("d", 21.0)
    assert health.success("d") is True
    assert health.state("d", 21.0) == "healthy"
    assert health.success("d") is False


def test_a_probe_released_without_verdict_or_lost_frees_the_deployment():
    health = DeploymentHealth(failures_to_cool=1, cooldown_s=5)
    health.failure("d", 0.0)
    health.begin("d", 5.0)
    health.release("d")
    assert health.state("d", 5.0) == "half_open"
    health.begin("d", 6.0)
    assert health.state("d", 10.9) == "probing"
    assert health.state("d", 11.0) == "half_open", "a probe that never reports expires"


def test_cooling_deployment_is_planned_last_then_half_open_first():
    r = router(PAIR, {"max_attempts": 2, "cooldown_failures": 2, "cooldown_s": 30})
    trip(r, "p1/x", now=100.0)
    for _ in range(50):
        assert ids(r.plan("m", 100.0)) == ["p2/x", "p1/x"]
    for _ in range(50):
        assert ids(r.plan("m", 130.0)) == ["p1/x", "p2/x"], "the half-open one is probed first"
    r.health.begin("p1/x", 130.0)
    assert ids(r.plan("m", 130.1)) == ["p2/x", "p1/x"], "while probed, others pass it by"


def test_cooling_deployments_come_after_every_healthy_fallback():
    models = {
        "m": {"deployments": [{"provider": "p1", "model": "x"}, {"provider": "p2", "model": "x"}],
              "fallbacks": ["f"]},
        "f": {"provider": "fb1", "model": "f"},
    }  # fmt: skip
    r = router(models, {"max_attempts": 4, "cooldown_failures": 1})
    trip(r, "p1/x", now=0.0)
    trip(r, "p2/x", now=0.0)
    plan = ids(r.plan("m", 1.0))
    assert plan[:2] == ["fb1/f", "fb1/f"]
    assert set(plan[2:]) == {"p1/x", "p2/x"}, "cooling ones are a last resort, never repeated"


def test_all_cooling_still_gives_a_plan_without_repeats():
    r = router({"solo": {"provider": "p1", "model": "s"}}, {"max_attempts": 4})
    trip(r, "p1/s", now=0.0)
    assert ids(r.plan("solo", 1.0)) == ["p1/s"]
    assert ids(r.plan("solo", 1000.0)) == ["p1/s"] * 4


def test_snapshot_lists_every_deployment_with_state_and_cooldown_left():
    r = router(PAIR, {"cooldown_failures": 2, "cooldown_s": 30})
    r.health.failure("p2/x", 100.0, "timeout")
    r.health.failure("p2/x", 101.0, "connect")
    r.health.failure("deepseek/r1", 101.0, "http_503")  # a wildcard deployment, known once used
    snap = r.snapshot(111.0)
    assert list(snap) == ["p1/x", "p2/x", "deepseek/r1"]
    assert snap["p1/x"] == {
        "state": "healthy", "consecutive_failures": 0, "cooldown_remaining_s": 0.0,
        "cooldowns": 0, "last_error": None, "last_failure_s_ago": None,
    }  # fmt: skip
    assert snap["p2/x"] == {
        "state": "cooling_down", "consecutive_failures": 2, "cooldown_remaining_s": 20.0,
        "cooldowns": 1, "last_error": "connect", "last_failure_s_ago": 10.0,
    }  # fmt: skip
    assert snap["deepseek/r1"]["state"] == "healthy"
    assert r.snapshot(131.0)["p2/x"]["state"] == "half_open"
    routes = r.routes(111.0)
    assert routes[0]["model"] == "m"
    assert [(d["deployment"], d["weight"], d["state"]) for d in routes[0]["deployments"]] == [
        ("p1/x", 1, "healthy"),
        ("p2/x", 1, "cooling_down"),
    ]


def test_plan_does_not_change_health():
    r = router(PAIR, {"cooldown_failures": 1, "cooldown_s": 5})
    trip(r, "p1/x", now=0.0)
    before = r.snapshot(10.0)
    for _ in range(10):
        r.plan("m", 10.0)
    assert r.snapshot(10.0) == before

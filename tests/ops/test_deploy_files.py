"""The deployment files, checked without a Docker engine: docker-compose.yml, the Dockerfile,
.dockerignore, deploy/prometheus.yml and the Grafana dashboard (every SPEC section 6 metric)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from gateway.config import load

from .scrape import SPEC_HISTOGRAMS, SPEC_METRICS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _compose_default(value: str) -> str:
    """What compose substitutes for ${VAR:-default} with nothing set."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_compose_services_ports_and_dependencies(compose):
    services = compose["services"]
    assert {"gateway", "postgres", "redis", "prometheus"} <= set(services)
    gateway = services["gateway"]
    # published on loopback unless GATEWAY_PUBLISH / PROMETHEUS_PUBLISH say otherwise
    assert [_compose_default(p) for p in gateway["ports"]] == ["127.0.0.1:8080:8080"]
    prometheus_ports = services["prometheus"]["ports"]
    assert [_compose_default(p) for p in prometheus_ports] == ["127.0.0.1:9090:9090"]
    for name in ("postgres", "redis"):
        assert "ports" not in services[name]  # reached by the gateway on the compose network only
    assert gateway["build"] in (".", {"context": "."})
    assert gateway["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    env = _env(gateway)
    assert {"DATABASE_URL", "REDIS_URL", "GATEWAY_ADMIN_KEY"} <= set(env)
    assert "@postgres:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:6379")
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")


def test_compose_healthchecks(compose):
    services = compose["services"]
    pg_check = " ".join(services["postgres"]["healthcheck"]["test"])
    assert "pg_isready" in pg_check
    assert "redis-cli" in services["redis"]["healthcheck"]["test"]
    assert "ping" in services["redis"]["healthcheck"]["test"]
    assert "/healthz" in " ".join(services["gateway"]["healthcheck"]["test"])
    for name in ("gateway", "postgres", "redis"):
        check = services[name]["healthcheck"]
        assert {"interval", "timeout", "retries"} <= set(check)


def test_compose_volumes_schema_and_prometheus_config(compose):
    services, volumes = compose["services"], compose["volumes"]
    pg_volumes = services["postgres"]["volumes"]
    assert any(v.endswith(":/var/lib/postgresql/data") and v.split(":")[0] in volumes
               for v in pg_volumes)  # fmt: skip
    assert "./schema.sql:/docker-entrypoint-initdb.d/001-schema.sql:ro" in pg_volumes
    prom_volumes = services["prometheus"]["volumes"]
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prom_volumes
    assert any(v.split(":")[0] in volumes and v.endswith(":/prometheus") for v in prom_volumes)
    for mounted in ("schema.sql", "deploy/prometheus.yml"):
        assert (ROOT / mounted).is_file()


def test_shipped_config_runs_on_compose_environment(compose):
    """config.yaml, baked into the image, resolves to compose's PostgreSQL and Redis."""
    env = {k: _compose_default(v) for k, v in _env(compose["services"]["gateway"]).items()}
    config = load(str(ROOT / "config.yaml"), env)
    assert config.database.url == "postgresql://gateway:gateway@postgres:5432/gateway"
    assert config.redis.url == "redis://redis:6379/0"
    assert config.server.port == 8080


def test_prometheus_scrapes_the_gateway():
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    gateway = jobs["gateway"]
    assert gateway.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for group in gateway["static_configs"] for t in group["targets"]]
    assert "gateway:8080" in targets


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", text)
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in (raw.strip() for raw in joined.splitlines())
        if line and not line.startswith("#")
    ]


def test_dockerfile_runs_non_root_with_a_healthcheck():
    steps = _instructions((ROOT / "Dockerfile").read_text(encoding="utf-8"))
    kinds = [kind for kind, _ in steps]
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = [arg for kind, arg in steps if kind == "RUN"]
    # the locked versions, hash-checked, before the project itself (which resolves nothing)
    locked = next(i for i, arg in enumerate(runs) if "--require-hashes" in arg)
    assert "-r requirements.txt" in runs[locked]
    assert any("pip install --no-deps ." in arg for arg in runs[locked + 1 :])
    users = [arg for kind, arg in steps if kind == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert kinds.index("USER") < kinds.index("CMD")
    health = [arg for kind, arg in steps if kind == "HEALTHCHECK"]
    assert health and "/healthz" in health[0] and "urllib" in health[0]
    assert ("EXPOSE", "8080") in steps
    assert json.loads(dict(steps)["CMD"]) == ["gateway", "serve"]


def test_dockerignore_keeps_secrets_and_local_state_out():
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for pattern in (".git", ".venv", "*.db", ".env"):
        assert pattern in ignored
    for needed in (
        "gateway",
        "requirements.txt",
        "pyproject.toml",
        "README.md",
        "config.yaml",
        "schema.sql",
    ):
        assert needed not in ignored


def test_grafana_dashboard_covers_every_spec_metric():
    dashboard = json.loads((ROOT / "deploy/grafana-dashboard.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    text = "\n".join(exprs)
    for metric in SPEC_METRICS:
        assert metric in text, metric
    for histogram in SPEC_HISTOGRAMS:
        for q in ("0.5", "0.95", "0.99"):
            assert f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket" in text
    assert "sum by (status) (rate(gateway_requests_total" in text
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))

"""Every module of the package imports on its own, in a fresh interpreter: no import cycles,
no import-time side effects that need a running loop, a database or the network."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import gateway

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(gateway.__path__, "gateway.")
    if m.name != "gateway.__main__"
)


def test_the_package_has_its_modules() -> None:
    assert {"gateway.web.app", "gateway.proxy.relay", "gateway.store.writer"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_alone(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


PURE = [
    "gateway.sse",
    "gateway.accounting.tokens",
    "gateway.routing",
    "gateway.limits.bucket",
    "gateway.limits.budget",
    "gateway.limits.admission",
    "gateway.store.history",
    "gateway.validation",
    "gateway.web.ratelimit_headers",
    "gateway.config",
    "gateway.errors",
    "gateway.store.base",
    "gateway.translate.responses",
    "gateway.translate.responses.usage",
    "gateway.translate.gemini",
    "gateway.translate.gemini.request",
    "gateway.translate.anthropic",
    "gateway.translate.messages.usage",
    "gateway.adapters.base",
    "gateway.adapters.capabilities",
]


@pytest.mark.parametrize("module", PURE)
def test_pure_module_loads_no_io_library(module: str) -> None:
    probe = (
        f"import sys, {module}; "
        "print(','.join(m for m in ('aiohttp', 'redis', 'asyncpg') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"{module} pulls in {done.stdout.strip()}"

"""Every module of the package imports on its own, in a fresh interpreter: no import cycles,
no import-time side effects that need a running loop, a database or the network. The packages
form layers: a module imports only from its own package or from a layer below it."""

from __future__ import annotations

import ast
import importlib.util
import pathlib
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
    "gateway.adapters.base",
    "gateway.adapters.capabilities",
]


# Whole packages that are pure: every module in them.
PURE += [m for m in MODULES if m.startswith(("gateway.translate.", "gateway.config."))]


@pytest.mark.parametrize("module", PURE)
def test_pure_module_loads_no_io_library(module: str) -> None:
    probe = (
        f"import sys, {module}; "
        "print(','.join(m for m in ('aiohttp', 'redis', 'asyncpg') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"{module} pulls in {done.stdout.strip()}"


# The clouds' libraries load only when a bedrock or vertex provider makes its first request.
CLOUD_LIBRARIES = ("botocore", "google.auth", "google.oauth2")


@pytest.mark.parametrize("module", ["gateway.web.app", "gateway.serve.cli", *PURE])
def test_cloud_libraries_load_only_when_used(module: str) -> None:
    probe = (
        f"import sys, {module}; print(','.join(m for m in {CLOUD_LIBRARIES!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"{module} pulls in {done.stdout.strip()}"


# Bottom to top. "gateway" stands for the top-level modules (errors, logs, metrics, sse, routing,
# validation, redis_clients): the foundations every package may use.
LAYERS = [
    ["gateway.config"],
    ["gateway"],
    ["gateway.store", "gateway.limits", "gateway.cache"],
    ["gateway.access"],
    ["gateway.accounting"],
    ["gateway.translate"],
    ["gateway.adapters", "gateway.openapi"],
    ["gateway.tracing"],
    ["gateway.proxy"],
    ["gateway.mcp"],
    ["gateway.web"],
    ["gateway.serve"],
]
LEVEL = {group: level for level, groups in enumerate(LAYERS) for group in groups}


def _group(module: str) -> str:
    parts = module.split(".")
    if len(parts) >= 2 and ".".join(parts[:2]) in LEVEL:
        return ".".join(parts[:2])
    return "gateway"


def _imports(module: str) -> set[str]:
    """The gateway modules `module` imports, anywhere in its body (deferred imports included)."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(pathlib.Path(spec.origin).read_text(encoding="utf-8"))
    package = module if spec.origin.endswith("__init__.py") else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("gateway")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("gateway"):
                found.add(target)
    return found


def test_imports_are_read_relative_and_deferred() -> None:
    assert {"gateway.accounting.recorder", "gateway.sse"} <= _imports("gateway.proxy.relay")


def test_the_layers_cover_every_package() -> None:
    packages = {_group(m) for m in MODULES}
    assert packages == set(LEVEL)


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_only_its_package_or_layers_below(module: str) -> None:
    mine = _group(module)
    upward = sorted(
        target
        for target in _imports(module)
        if (theirs := _group(target)) != mine and LEVEL[theirs] >= LEVEL[mine]
    )
    assert not upward, f"{module} ({mine}, layer {LEVEL[mine]}) imports {upward}"


def test_the_mcp_sdk_loads_only_when_mcp_servers_is_set() -> None:
    probe = (
        "import sys; from gateway.serve import cli, server, worker; from gateway.web import app; "
        "from gateway.config import parse; "
        "app.create_app(parse({}, 'probe', {})); print('mcp' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False", "the mcp SDK loads without mcp_servers"

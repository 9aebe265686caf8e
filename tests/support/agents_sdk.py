"""The OpenAI Agents SDK (PyPI `openai-agents`) as a client of the gateway, in a venv of its own
(it is not in the lock): installed once with pip into a cache folder, driven by
agents_sdk_turn.py (one tool turn, run or run_streamed, chat or Responses model)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

PACKAGE = "openai-agents"
PINNED_VERSION = "0.24.0"
VERSION_ENV = "AI_GATEWAY_AGENTS_SDK_VERSION"
CACHE_ENV = "AI_GATEWAY_AGENTS_SDK_CACHE"
SCRIPT = Path(__file__).parent / "agents_sdk_turn.py"


class AgentsSDKUnavailable(Exception):
    """The SDK cannot be installed here (no registry...)."""


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "ai-gateway-tests" / "openai-agents"
    return Path(os.environ.get(CACHE_ENV) or default)


def chosen_version() -> str:
    return os.environ.get(VERSION_ENV) or PINNED_VERSION


def latest_version() -> str:
    """The newest release on the package index (`pip index versions`)."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", PACKAGE],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    first = done.stdout.splitlines()[0] if done.stdout else ""
    if done.returncode != 0 or "(" not in first:
        raise AgentsSDKUnavailable(f"pip index versions {PACKAGE} failed: {done.stderr[-500:]}")
    return first.split("(", 1)[1].split(")", 1)[0]


@functools.cache
def install_agents_sdk(version: str | None = None) -> Path:
    """The python of a venv holding `openai-agents==version`."""
    version = version or chosen_version()
    target = cache_dir() / version
    python = target / "bin" / "python"
    if (target / ".installed").exists() and python.exists():
        return python
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
    try:
        subprocess.run([sys.executable, "-m", "venv", str(staging)], check=True, timeout=120)
        done = subprocess.run(
            [str(staging / "bin" / "pip"), "install", "-q", f"{PACKAGE}=={version}"],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise AgentsSDKUnavailable(f"pip install {PACKAGE}=={version}: {done.stderr[-2000:]}")
        (staging / ".installed").touch()
        with contextlib.suppress(OSError):  # already there: another process won
            staging.rename(target)
    except (OSError, subprocess.SubprocessError) as exc:
        raise AgentsSDKUnavailable(f"a venv for {PACKAGE}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return python


async def run_turn(
    python: Path, base_url: str, key: str, model: str, api: str, stream: bool
) -> dict[str, Any]:
    """One tool turn; the script's JSON ({"text"}), or RuntimeError with its stderr."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "OPENAI_AGENTS_DISABLE_TRACING": "1",
        "BASE_URL": base_url,
        "API_KEY": key,
        "MODEL": model,
        "API": api,
        "STREAM": "1" if stream else "0",
    }
    process = await asyncio.create_subprocess_exec(
        str(python), str(SCRIPT), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 90)
    if process.returncode != 0:
        raise RuntimeError(f"the agent exited {process.returncode}: {err.decode()[-3000:]}")
    result: dict[str, Any] = orjson.loads(out.splitlines()[-1])
    return result

"""The Vercel AI SDK (npm `ai` with `@ai-sdk/openai`) as a client of the gateway: installed once
with npm into a cache folder, driven by node/vercel_ai_turn.mjs (one tool turn, generateText or
streamText, over chat completions or the Responses API)."""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson

from tests.support.npm import npm_install_once

# The SDK and its OpenAI provider are released together; pinned as a pair.
PINNED = {"ai": "7.0.185", "@ai-sdk/openai": "4.0.126"}
VERSION_ENV = "AI_GATEWAY_VERCEL_AI_VERSION"  # a version of `ai`; the provider at its latest
CACHE_ENV = "AI_GATEWAY_VERCEL_AI_CACHE"
SCRIPT = Path(__file__).parent / "node" / "vercel_ai_turn.mjs"


class VercelAIUnavailable(Exception):
    """The SDK cannot be installed or run here (no node/npm, no registry...)."""


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "ai-gateway-tests" / "vercel-ai"
    return Path(os.environ.get(CACHE_ENV) or default)


def chosen_version() -> str:
    return os.environ.get(VERSION_ENV) or PINNED["ai"]


def latest_version() -> str:
    """The newest `ai` on the npm registry (`npm view`)."""
    npm = shutil.which("npm")
    if npm is None:
        raise VercelAIUnavailable("the Vercel AI SDK needs npm on PATH")
    done = subprocess.run(
        [npm, "view", "ai", "version"], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise VercelAIUnavailable(f"npm view ai failed: {done.stderr[-500:]}")
    return done.stdout.strip()


@functools.cache
def install_vercel_ai(version: str | None = None) -> Path:
    """The folder holding node_modules with `ai@version` and its OpenAI provider."""
    version = version or chosen_version()
    provider = PINNED["@ai-sdk/openai"] if version == PINNED["ai"] else "latest"
    packages = [f"ai@{version}", f"@ai-sdk/openai@{provider}"]
    return npm_install_once(cache_dir() / version, packages, VercelAIUnavailable)


async def run_turn(
    prefix: Path, base_url: str, key: str, model: str, api: str, stream: bool
) -> dict[str, Any]:
    """One tool turn; the script's JSON ({"text", "steps"}), or RuntimeError with its stderr."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AI_PREFIX": str(prefix),
        "BASE_URL": base_url,
        "API_KEY": key,
        "MODEL": model,
        "API": api,
        "STREAM": "1" if stream else "0",
    }
    process = await asyncio.create_subprocess_exec(
        "node", str(SCRIPT), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    if process.returncode != 0:
        raise RuntimeError(f"node exited {process.returncode}: {err.decode()[-3000:]}")
    result: dict[str, Any] = orjson.loads(out.splitlines()[-1])
    return result

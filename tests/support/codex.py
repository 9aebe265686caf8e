"""Codex CLI (npm `@openai/codex`) as a headless client of the gateway's /v1/responses: installed
once with npm into a cache folder, run as `codex exec` in a private CODEX_HOME, offline.

`codex exec` speaks only the Responses API, streamed: every turn is one `POST {base_url}/responses`
with the whole conversation in `input` (developer instructions first), function tools
(`exec_command`, `write_stdin`, ...) and, by the model's features, `namespace` and hosted tools.
A tool call is run (`exec_command` with `cmd`) and its output sent back as a
`function_call_output` item in the next turn's input.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.npm import npm_install_once

PACKAGE = "@openai/codex"
PINNED_VERSION = "0.171.0"
VERSION_ENV = "AI_GATEWAY_CODEX_VERSION"
CACHE_ENV = "AI_GATEWAY_CODEX_CACHE"
KEY_ENV = "GATEWAY_KEY"  # the variable Codex reads the gateway key from


class CodexUnavailable(Exception):
    """Codex cannot be installed or started here (no node/npm, no registry...)."""


@dataclass
class CodexRun:
    returncode: int
    stdout: str  # the agent's last message
    stderr: str  # the transcript


def cache_dir() -> Path:
    """Where installs are kept: CACHE_ENV, or ~/.cache/ai-gateway-tests/codex."""
    default = Path.home() / ".cache" / "ai-gateway-tests" / "codex"
    return Path(os.environ.get(CACHE_ENV) or default)


def latest_version() -> str:
    """The newest version on the npm registry (`npm view`)."""
    npm = shutil.which("npm")
    if npm is None:
        raise CodexUnavailable("Codex needs npm on PATH")
    done = subprocess.run(
        [npm, "view", PACKAGE, "version"], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise CodexUnavailable(f"npm view {PACKAGE} failed: {done.stderr[-500:]}")
    return done.stdout.strip()


def install_codex(version: str | None = None) -> Path:
    """Install `PACKAGE@version` (default: VERSION_ENV or PINNED_VERSION) into
    cache_dir()/<version> once per machine; its `codex`, or CodexUnavailable saying why."""
    outcome = _install_once(version or os.environ.get(VERSION_ENV) or PINNED_VERSION)
    if isinstance(outcome, CodexUnavailable):
        raise outcome
    return outcome


@functools.cache
def _install_once(version: str) -> Path | CodexUnavailable:
    try:
        return _install(version)
    except CodexUnavailable as exc:
        return exc


def _install(version: str) -> Path:
    target = npm_install_once(cache_dir() / version, [f"{PACKAGE}@{version}"], CodexUnavailable)
    exe = target / "node_modules" / ".bin" / "codex"
    if not exe.exists():
        raise CodexUnavailable(f"{PACKAGE}@{version} installed, but {exe} is missing")
    return exe


async def run_codex(
    exe: Path,
    base_url: str,
    key: str,
    model: str,
    prompt: str,
    timeout_s: float = 90.0,
    config: Sequence[str] = (),
) -> CodexRun:
    """`codex exec PROMPT` with the gateway as its Responses provider, in a throwaway
    CODEX_HOME and working folder, commands run without a sandbox (the fakes choose them);
    `config` adds `-c key=value` overrides (such as `mcp_servers.<name>={...}`)."""
    with tempfile.TemporaryDirectory(prefix="codex-") as root:
        home, work = Path(root) / "home", Path(root) / "work"
        home.mkdir()
        work.mkdir()
        provider = (
            f'{{name="gateway", base_url="{base_url}", env_key="{KEY_ENV}", wire_api="responses"}}'
        )
        args = [
            str(exe), "exec", "--skip-git-repo-check", "--color", "never",
            "--dangerously-bypass-approvals-and-sandbox",
            "-c", 'model_provider="gateway"', "-c", f"model_providers.gateway={provider}",
            "-c", "analytics.enabled=false", *(a for c in config for a in ("-c", c)),
            "-m", model, prompt,
        ]  # fmt: skip
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "CODEX_HOME": str(home),
            KEY_ENV: key,
        }
        process = await asyncio.create_subprocess_exec(
            *args,
            env=env,
            cwd=work,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout_s)
        except TimeoutError:
            process.kill()
            out, err = await process.communicate()
        return CodexRun(process.returncode or 0, out.decode(), err.decode())

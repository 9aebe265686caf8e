"""Claude Code (npm `@anthropic-ai/claude-code`) as a headless test client of the Anthropic front
door: installed once with npm into a cache folder, run as `claude -p` in a private HOME, offline.

What one `claude -p PROMPT --output-format json --tools ""` turn sends (measured against
tests/support/recording_anthropic.py with 2.1.112, the pinned last pure-JS build, and 2.1.332,
a native build):
- Requests, in order: `HEAD <ANTHROPIC_BASE_URL>` (2.1.112 only: a warm-up, answer ignored, 404 is
  fine); then one `POST /v1/messages?beta=true` (with that query string), streamed. No second
  model, and no count_tokens call: that one (`POST /v1/messages/count_tokens?beta=true`, beta
  `token-counting-2024-11-01`) is in the code for other features. If the stream breaks
  (connection dropped, or an `event: error`) the turn is sent again without streaming (2.1.112
  omits `stream`, 2.1.332 sends `"stream": false`).
  Error statuses, 401 included, are retried CLAUDE_CODE_MAX_RETRIES times (default 10, with
  backoff); with 0 the run ends at once: exit 1, JSON `is_error: true`, `api_error_status`, and
  `result` "API Error: <status> <body>".
- Headers: `x-api-key` from ANTHROPIC_API_KEY, or `Authorization: Bearer` from
  ANTHROPIC_AUTH_TOKEN (then no x-api-key); `anthropic-version: 2023-06-01`; `anthropic-beta:
  claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,` then
  `prompt-caching-scope-2026-01-05,effort-2025-11-24` (2.1.112) or `mid-conversation-tool-changes-
  2026-07-01,thinking-token-count-2026-05-13,effort-2025-11-24` (2.1.332; tools add
  `advanced-tool-use-2025-11-20`); `x-app: cli`; `User-Agent: claude-cli/<version> (external,
  sdk-cli)`; `X-Claude-Code-Session-Id`; `anthropic-dangerous-direct-browser-access: true`;
  `X-Stainless-*` (Lang js, Package-Version, OS, Arch, Runtime, Runtime-Version, Retry-Count,
  Timeout 600); `Accept-Encoding: gzip, deflate` (2.1.332 adds br, zstd).
- Body: `model` (as given, any name), `max_tokens` 32000, `stream` true, `system` as text blocks
  (a billing line "x-anthropic-billing-header: cc_version=...", then two blocks with
  `cache_control: {"type": "ephemeral"}`), `messages` (2.1.112: one user message of text blocks,
  the prompt's with cache_control; 2.1.332: the user message as a string, then a
  `{"role": "system", ...}` message inside `messages`), `tools` ([] here; otherwise name,
  description, input_schema, and in 2.1.332 `defer_loading`), `metadata.user_id` (a JSON string:
  device_id, account_uuid, session_id), `thinking: {"type": "adaptive"}` (2.1.332 adds
  `"display": "omitted"`), `context_management: {"edits": [{"type": "clear_thinking_20251015",
  "keep": "all"}]}`, `output_config: {"effort": "high"}`. No temperature, top_p or tool_choice.
- Network: with QUIET_ENV and the seeded ~/.claude.json below, nothing but ANTHROPIC_BASE_URL is
  contacted (strace in an empty network namespace: no DNS lookup, no connect off 127.0.0.1).
  Without them it resolves api.anthropic.com (event logging), and 2.1.112 even with them tries
  to send the API key to api.anthropic.com/api/claude_code/organizations/metrics_enabled at
  exit unless ~/.claude.json caches `metricsStatusCache` as disabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import orjson

from tests.support.npm import npm_install_once

PACKAGE = "@anthropic-ai/claude-code"
# The last pure-JS build: engines node>=18, a 19 MB download. Later builds are ~190 MB native
# binaries (they run too, whatever the node version); pick one with VERSION_ENV.
PINNED_VERSION = "2.1.112"
VERSION_ENV = "AI_GATEWAY_CLAUDE_CODE_VERSION"
CACHE_ENV = "AI_GATEWAY_CLAUDE_CODE_CACHE"

# Every switch that stops traffic other than the API calls themselves.
QUIET_ENV = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",  # autoupdater, telemetry, error reports...
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
}
# Every variable that names a model, so no request goes to a model the gateway does not know.
MODEL_VARS = (
    "ANTHROPIC_MODEL",
    "ANTHROPIC_DEFAULT_OPUS_MODEL",
    "ANTHROPIC_DEFAULT_SONNET_MODEL",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL",
    "ANTHROPIC_SMALL_FAST_MODEL",  # the older name of the haiku one
    "CLAUDE_CODE_SUBAGENT_MODEL",
)
Auth = Literal["x-api-key", "bearer"]


class ClaudeCodeUnavailable(RuntimeError):
    """Claude Code cannot be installed or started here (no node/npm, no registry...)."""


class ClaudeCodeError(RuntimeError):
    """A `claude -p` run that failed, timed out or reported an error; carries what it printed
    and its parsed JSON result, when there was one."""

    def __init__(
        self, message: str, returncode: int | None, stdout: str, stderr: str, result: Any
    ) -> None:
        super().__init__(
            f"{message}\n--- stdout ---\n{stdout[-4000:]}\n--- stderr ---\n{stderr[-4000:]}"
        )
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.result = result


def cache_dir() -> Path:
    """Where installs are kept: CACHE_ENV, or ~/.cache/ai-gateway-tests/claude-code."""
    default = Path.home() / ".cache" / "ai-gateway-tests" / "claude-code"
    return Path(os.environ.get(CACHE_ENV) or default)


def ensure_claude_code() -> Path | None:
    """The `claude` executable of the chosen version, installed on first use; None when it
    cannot be had (install_claude_code says why)."""
    try:
        return install_claude_code()
    except ClaudeCodeUnavailable:
        return None


def install_claude_code(version: str | None = None) -> Path:
    """Install `PACKAGE@version` (default: VERSION_ENV or PINNED_VERSION) with npm into
    cache_dir()/<version>, once per machine, and return its `claude`; raises
    ClaudeCodeUnavailable with the reason (remembered: a failed install is not retried)."""
    outcome = _install_once(version or os.environ.get(VERSION_ENV) or PINNED_VERSION)
    if isinstance(outcome, ClaudeCodeUnavailable):
        raise outcome
    return outcome


@functools.cache
def _install_once(version: str) -> Path | ClaudeCodeUnavailable:
    try:
        return _install(version)
    except ClaudeCodeUnavailable as exc:
        return exc


def _install(version: str) -> Path:
    target = npm_install_once(
        cache_dir() / version,
        [f"{PACKAGE}@{version}"],
        ClaudeCodeUnavailable,
        check=lambda prefix: _check_version(prefix / "node_modules" / ".bin" / "claude", version),
    )
    exe = target / "node_modules" / ".bin" / "claude"
    if not exe.exists():
        raise ClaudeCodeUnavailable(f"{PACKAGE}@{version} installed, but {exe} is missing")
    return exe


def _check_version(exe: Path, version: str) -> None:
    """Run `claude --version` in a throwaway HOME: the install works on this machine."""
    with tempfile.TemporaryDirectory(prefix="claude-home-") as home:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": home, **QUIET_ENV}
        try:
            done = subprocess.run(
                [str(exe), "--version"], env=env, capture_output=True, text=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ClaudeCodeUnavailable(f"{exe} --version failed: {exc}") from exc
    if done.returncode != 0 or version not in done.stdout:
        raise ClaudeCodeUnavailable(
            f"{exe} --version said {done.stdout.strip()!r} ({done.returncode}): {done.stderr}"
        )


def seed_home(home: Path) -> None:
    """A fresh config for a private HOME. The cached 'metrics disabled' answer stops 2.1.x
    asking api.anthropic.com (with the API key) whether to export usage metrics."""
    config = {"metricsStatusCache": {"enabled": False, "timestamp": int(time.time() * 1000)}}
    (home / ".claude.json").write_bytes(orjson.dumps(config))


def claude_env(
    base_url: str,
    api_key: str,
    model: str,
    home: Path,
    *,
    auth: Auth = "x-api-key",
    max_retries: int = 0,
    timeout_s: float = 60.0,
) -> dict[str, str]:
    """The whole environment of a run: nothing is inherited but PATH (for node)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TMPDIR": str(home),  # else it leaves probe folders in a shared /tmp/claude-<uid>
        "CLAUDE_CODE_TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "ANTHROPIC_BASE_URL": base_url,
        "CLAUDE_CODE_MAX_RETRIES": str(max_retries),
        "API_TIMEOUT_MS": str(int(timeout_s * 1000)),
        **QUIET_ENV,
    }
    env["ANTHROPIC_API_KEY" if auth == "x-api-key" else "ANTHROPIC_AUTH_TOKEN"] = api_key
    env.update(dict.fromkeys(MODEL_VARS, model))
    return env


async def run_claude(
    base_url: str,
    api_key: str,
    prompt: str,
    *,
    model: str,
    workdir: Path,
    timeout_s: float,
    auth: Auth = "x-api-key",
    max_retries: int = 0,
    extra_env: Mapping[str, str] | None = None,
    tools: str = "",
    allowed: str = "",
    setup: Sequence[Sequence[str]] = (),
) -> dict[str, Any]:
    """One headless turn, `claude -p prompt --output-format json`, with `tools` (none by
    default; those given are allowed without asking, and those in `allowed` too, such as MCP
    tools), after the `setup` commands (`claude ARGS...`, such as `mcp add`, run in the same
    HOME and folder), against
    `base_url` (the root, without /v1) as `api_key` sent the `auth` way; returns the JSON
    result. Raises ClaudeCodeError on a non-zero exit, an error result or after `timeout_s`
    (the whole process group is killed). Async, so servers on this event loop can answer."""
    exe = install_claude_code()
    cmd = [str(exe), "-p", "--output-format", "json", "--model", model, "--tools", tools]
    if tools or allowed:
        cmd += ["--allowedTools", ",".join(t for t in (tools, allowed) if t)]
    cmd += ["--no-session-persistence", "--", prompt]
    with tempfile.TemporaryDirectory(prefix="claude-home-") as home:
        seed_home(Path(home))
        env = claude_env(
            base_url, api_key, model, Path(home),
            auth=auth, max_retries=max_retries, timeout_s=timeout_s,
        )  # fmt: skip
        env.update(extra_env or {})
        for args in setup:
            code, out, err = await _run_bounded([str(exe), *args], env, workdir, timeout_s)
            if code != 0:
                raise ClaudeCodeError(f"claude {args[0]} failed ({code})", code, out, err, None)
        returncode, out, err = await _run_bounded(cmd, env, workdir, timeout_s)
    result = _parse_result(out)
    if returncode is None:
        raise ClaudeCodeError(f"claude timed out after {timeout_s} s", None, out, err, result)
    if returncode != 0 or not isinstance(result, dict) or result.get("is_error"):
        raise ClaudeCodeError(f"claude failed (exit {returncode})", returncode, out, err, result)
    return result


async def _run_bounded(
    cmd: list[str], env: dict[str, str], cwd: Path, timeout_s: float
) -> tuple[int | None, str, str]:
    """(exit code or None on timeout, stdout, stderr); the process group never outlives it."""
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    reads = asyncio.gather(proc.stdout.read(), proc.stderr.read())
    returncode: int | None = None
    try:
        returncode = await asyncio.wait_for(proc.wait(), timeout_s)
    except TimeoutError:
        pass
    except BaseException:  # cancelled: leave nothing running or pending
        reads.cancel()
        raise
    finally:
        _kill_group(proc.pid)  # its children too
        if proc.returncode is None:
            await proc.wait()
    try:
        out, err = await asyncio.wait_for(reads, 5)
    except TimeoutError:  # a grandchild escaped the group and holds the pipes
        out, err = b"", b"(output lost: the pipes stayed open)"
    return returncode, out.decode(errors="replace"), err.decode(errors="replace")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _parse_result(stdout: str) -> Any:
    """The JSON result object: the whole output, or else its last line that parses."""
    for candidate in [stdout, *reversed(stdout.splitlines())]:
        with contextlib.suppress(orjson.JSONDecodeError):
            if candidate.strip():
                return orjson.loads(candidate)
    return None


def latest_version() -> str:
    """The newest version on the npm registry (`npm view`), for scripts/compat --latest."""
    npm = shutil.which("npm")
    if npm is None:
        raise ClaudeCodeUnavailable("Claude Code needs npm on PATH")
    done = subprocess.run(
        [npm, "view", PACKAGE, "version"], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise ClaudeCodeUnavailable(f"npm view {PACKAGE} failed: {done.stderr[-500:]}")
    return done.stdout.strip()

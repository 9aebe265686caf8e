"""npm packages for the tests (Claude Code, Codex, the Vercel AI SDK, oidc-provider): installed
once per machine into a cache folder, staged beside it and renamed into place when whole."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

INSTALL_TIMEOUT_S = 600


def npm_install_once(
    target: Path,
    packages: Sequence[str],
    unavailable: type[Exception],
    check: Callable[[Path], None] | None = None,
) -> Path:
    """`npm install packages` into `target` unless a whole install is there; `check(prefix)` may
    refuse a fresh install by raising. Every failure (no node or npm, npm's error, a timeout) is
    raised as `unavailable` with the reason. Of two concurrent installers one loses the rename."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise unavailable(f"{packages[0]} needs node and npm on PATH")
    if (target / ".installed").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        cmd = [npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund"]
        cmd += ["--loglevel=error", "--prefer-offline", "--fetch-timeout=60000"]
        env = {**os.environ, "npm_config_update_notifier": "false"}
        try:
            done = subprocess.run(
                [*cmd, *packages],
                env=env,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise unavailable(f"npm install {' '.join(packages)} failed: {exc}") from exc
        if done.returncode != 0:
            raise unavailable(
                f"npm install {' '.join(packages)} failed ({done.returncode}): "
                f"{done.stderr[-2000:]}"
            )
        if check is not None:
            check(staging)
        (staging / ".installed").touch()
        with contextlib.suppress(OSError):  # already there: another process won
            staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target

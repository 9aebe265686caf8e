# Shared by scripts/run, scripts/test and scripts/bench: make .venv and install the locked versions.
# Usage: . scripts/_venv.sh [dev|latest]   ("dev" installs requirements-dev.txt, nothing installs
# requirements.txt, each only when the lock or pyproject.toml changed; "latest" installs the newest
# releases pyproject.toml allows, ignoring the locks, for scripts/test --latest). Locks: scripts/lock.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GATEWAY_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
extras="${1:-}"
lock="$ROOT/requirements.txt"
[ "$extras" = dev ] && lock="$ROOT/requirements-dev.txt"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.installed-${extras:-base}"
# The dev lock holds every runtime pin too, so a dev install serves scripts/run as well.
[ -z "$extras" ] && [ -f "$VENV/.installed-dev" ] && stamp="$VENV/.installed-dev" && lock="$ROOT/requirements-dev.txt"
if [ "$extras" = latest ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade -e "$ROOT[dev]"
elif [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  # Exactly the locked files (hash-checked), then the project itself without resolving anything.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
    --no-deps -r "$lock"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e "$ROOT"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"

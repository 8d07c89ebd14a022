# Sourced by the scripts: makes .venv (Python >= 3.11) and installs kstreams with its compiled core.
# Re-installs only when the build inputs changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
pick_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "kstreams needs Python 3.11 or newer on PATH" >&2; return 1
}
if [ ! -x .venv/bin/python ]; then
  "$(pick_python)" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
stamp=".venv/.kstreams-build-stamp"
inputs_hash="$(cat pyproject.toml setup.py kstreams/_core/*.py kstreams/_core/*.pxd | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$inputs_hash" ] || ! ls kstreams/_core/*.so >/dev/null 2>&1; then
  echo "[kstreams] installing dependencies and compiling kstreams/_core ..." >&2
  .venv/bin/python -m pip install -q -e ".[test]"
  echo "$inputs_hash" > "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"

#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine (run as root): system packages, a virtualenv in .venv, the package.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/apt-ensure.sh docker-registry skopeo umoci curl pigz python3 python3-venv python3-pip ca-certificates git
# The Debian package starts a registry on :5000 as a service; the tests start their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  systemctl stop docker-registry || true
fi

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "setup: Python >= 3.11 required" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.ocipush-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[test]'
  echo "$want" > "$stamp"
fi
# Byte-compile as a wheel install would: the editable install and PYTHONDONTWRITEBYTECODE would leave every
# start-up compiling the sources again (~40 ms).
.venv/bin/python -m compileall -q ocipush >/dev/null
bash benchmarks/install.sh  # benchmark tools and the Python peers' venv (idempotent, fast when installed)

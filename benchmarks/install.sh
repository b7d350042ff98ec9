#!/usr/bin/env bash
# Install what the benchmarks need; idempotent and fast when everything is there.
#   benchmarks/install.sh            Debian tools (if missing, needs root) + the Python peers' virtualenv
#   benchmarks/install.sh --python   only the Python peers' virtualenv (what scripts/setup.sh calls)
# The peers (python-dxf, oras, and matplotlib for the chart) live in benchmarks/.venv-peers, never in .venv.
set -euo pipefail
cd "$(dirname "$0")"

if [ "${1:-}" != "--python" ]; then
  PACKAGES=(docker-registry skopeo umoci curl pigz time util-linux tar)
  missing=()
  for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    echo "benchmarks: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

PEERS=(oras python-dxf matplotlib)
stamp=.venv-peers/.installed
want="${PEERS[*]}"
if [ -x .venv-peers/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
PYTHON=${PYTHON:-python3}
[ -x .venv-peers/bin/python ] || "$PYTHON" -m venv .venv-peers
.venv-peers/bin/python -m pip install -q --disable-pip-version-check "${PEERS[@]}"
echo "$want" > "$stamp"

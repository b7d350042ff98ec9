#!/usr/bin/env bash
# Install what the benchmarks need; idempotent and fast when everything is there.
#   benchmarks/install.sh            Debian tools (if missing, needs root) + the Python peers' virtualenv
#   benchmarks/install.sh --python   only the Python peers' virtualenv (what scripts/setup.sh calls)
# The peers (python-dxf, oras, and matplotlib for the chart) live in benchmarks/.venv-peers, never in .venv.
set -euo pipefail
cd "$(dirname "$0")"

if [ "${1:-}" != "--python" ]; then
  bash ../scripts/apt-ensure.sh docker-registry skopeo umoci buildah runc curl pigz time util-linux tar openssl
fi

PEERS=(oras python-dxf matplotlib)
# The same interpreter as ocipush's (scripts/make-venv.sh), so that the Python clients compare as code; a venv
# made anew has no stamp.
bash ../scripts/make-venv.sh .venv-peers
stamp=.venv-peers/.installed
want="${PEERS[*]}"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
.venv-peers/bin/python -m pip install -q --disable-pip-version-check "${PEERS[@]}"
echo "$want" > "$stamp"

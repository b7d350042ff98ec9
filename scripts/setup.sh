#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine (run as root).
#   scripts/setup.sh demo   what the demo runs: a registry, Python, a virtualenv in .venv with ocipush alone
#   scripts/setup.sh test   (default) the demo's, plus the real components the tests run (skopeo, umoci, podman,
#                           buildah, runc, debootstrap), the test dependencies and the benchmark peers
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-test}
case "$profile" in
  demo) packages=(docker-registry python3 python3-venv python3-pip ca-certificates); extra="" ;;
  test) packages=(docker-registry python3 python3-venv python3-pip ca-certificates git curl pigz skopeo umoci
                  podman buildah runc debootstrap time tinyproxy util-linux-extra openssl)
        extra="[test]" ;;
  *) echo "setup: unknown profile '$profile' (demo or test)" >&2; exit 2 ;;
esac

bash scripts/apt-ensure.sh "${packages[@]}"
# The Debian package starts a registry on :5000 as a service; the demo and the tests start their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  systemctl stop docker-registry || true
fi

bash scripts/make-venv.sh .venv  # with the python3 installed above (PYTHON=... picks another)
# The stamp names what is installed: a test install serves the demo too, a demo install does not serve the tests.
stamp=.venv/.ocipush-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1) compat $extra"
have=$(cat "$stamp" 2>/dev/null || true)
if [ "$have" != "$want" ] && ! { [ "$profile" = demo ] && [ "${have% *}" = "${want% *}" ]; }; then
  log=$(mktemp)
  # A compat editable install puts the source folder on sys.path; the default one imports a finder (with pathlib)
  # at every start of the interpreter, ~3 ms that an installed wheel never costs.
  # pip's output is kept and shown only when the install fails.
  if ! { .venv/bin/python -m pip install --upgrade pip &&
         .venv/bin/python -m pip install -e ".$extra" --config-settings editable_mode=compat; } >"$log" 2>&1
  then
    cat "$log" >&2; rm -f "$log"; echo "setup: pip install failed (output above)" >&2; exit 1
  fi
  rm -f "$log"
  echo "$want" > "$stamp"
fi
# Byte-compile as a wheel install would: the editable install and PYTHONDONTWRITEBYTECODE would leave every
# start-up compiling the sources again (~40 ms).
.venv/bin/python -m compileall -q ocipush >/dev/null
if [ "$profile" = test ]; then
  bash benchmarks/install.sh --python  # the Python peers' venv (idempotent, fast when installed)
fi

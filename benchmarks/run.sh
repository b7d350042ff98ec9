#!/usr/bin/env bash
# One command for the benchmark suite: install what it needs, then run it.
#   benchmarks/run.sh            full run (≈ 25 min with --reps 3, 40+ with the default 5), report in benchmarks/results/
#   benchmarks/run.sh --quick    small data, one repetition (< 2 min), report in benchmarks/results-quick/
# Other arguments go to bench.py (--reps N, --only P2,P3, --out DIR, --keep-data).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/ocipush ]; then
  echo "run scripts/setup.sh first (ocipush's own virtualenv .venv is missing)" >&2
  exit 2
fi
bash benchmarks/install.sh
# ocipush as users get it: a regular (not editable) install with its runtime dependencies and the dask extra (SY3
# scales out on it; nothing imports it unless asked), byte-compiled.
# The development venv carries test tools (click, moto, ...) that httpx and others import at start-up.
bash scripts/make-venv.sh benchmarks/.venv-ocipush  # the interpreter of .venv
benchmarks/.venv-ocipush/bin/python -m pip install -q --disable-pip-version-check '.[dask]' >/dev/null
benchmarks/.venv-ocipush/bin/python -m pip install -q --disable-pip-version-check --no-deps --force-reinstall . >/dev/null
exec .venv/bin/python benchmarks/bench.py --ocipush benchmarks/.venv-ocipush/bin/ocipush "$@"

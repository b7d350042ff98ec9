#!/usr/bin/env bash
# Set up (idempotently) and run the whole test suite, linters included. Exit status is non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
.venv/bin/ruff check ocipush tests benchmarks
.venv/bin/mypy
exec .venv/bin/python -m pytest -n 2 -q "$@"

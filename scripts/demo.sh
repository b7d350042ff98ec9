#!/usr/bin/env bash
# Set up (idempotently) and run the embedded demo: build-push the example app to a registry started on 127.0.0.1,
# pull it back and check digests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh demo
exec .venv/bin/ocipush demo "$@"

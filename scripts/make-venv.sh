#!/usr/bin/env bash
# A virtualenv at $1 made with $PYTHON, by default the Debian python3 that scripts/apt-ensure.sh installs; one made
# with another interpreter is replaced. Not whichever python3 PATH finds first: a Python built from source without
# PGO (pyenv's default) starts every command ~25 % slower, and the benchmarks time ocipush's start-up.
set -euo pipefail
dir=$1
PYTHON=${PYTHON:-/usr/bin/python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "$PYTHON: Python >= 3.11 required" >&2; exit 1; }
real_executable='import os, sys; print(os.path.realpath(sys.executable))'
if [ -x "$dir/bin/python" ] && [ "$("$dir/bin/python" -c "$real_executable")" != "$("$PYTHON" -c "$real_executable")" ]
then
  rm -rf "$dir"
fi
[ -x "$dir/bin/python" ] || "$PYTHON" -m venv "$dir"

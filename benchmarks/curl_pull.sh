#!/usr/bin/env bash
# curl_pull.sh HOST REPO OUTDIR DIGEST [DIGEST ...]
# The wire limit for a pull: one GET per blob, all in parallel, no verification.
set -euo pipefail
host=$1 repo=$2 out=$3
shift 3
mkdir -p "$out"
pids=()
for digest in "$@"; do
  curl -fsS -o "$out/${digest#sha256:}" "http://$host/v2/$repo/blobs/$digest" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done

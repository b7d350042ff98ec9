#!/usr/bin/env bash
# curl_pull.sh [--verify] HOST REPO OUTDIR DIGEST [DIGEST ...]
# The wire limit for a pull: one GET per blob, all in parallel, no verification. With --verify each blob, once
# downloaded, is hashed with `openssl dgst -sha256` (the fastest SHA-256 of the standard tools here; coreutils'
# sha256sum has no SHA extensions) and a wrong digest fails the run: the yardstick for a verified pull.
set -euo pipefail
verify=false
if [ "$1" = --verify ]; then verify=true; shift; fi
host=$1 repo=$2 out=$3
shift 3
mkdir -p "$out"
fetch() {
  local digest=$1 file="$out/${1#sha256:}"
  curl -fsS -o "$file" "http://$host/v2/$repo/blobs/$digest"
  if $verify; then
    local got
    got=$(openssl dgst -sha256 -r "$file")
    [ "sha256:${got%% *}" = "$digest" ] || { echo "digest mismatch: $digest" >&2; return 1; }
  fi
}
pids=()
for digest in "$@"; do
  fetch "$digest" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status

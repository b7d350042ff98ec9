#!/usr/bin/env bash
# curl_push.sh HOST REPO FILE DIGEST [FILE DIGEST ...]
# The wire limit: each blob is one POST and one streamed PUT (curl -T), all blobs in parallel.
set -euo pipefail
host=$1 repo=$2
shift 2
push() {
  local file=$1 digest=$2 loc sep
  loc=$(curl -fsS -X POST -o /dev/null -D - "http://$host/v2/$repo/blobs/uploads/" | tr -d '\r' |
    sed -n 's/^[Ll]ocation: //p')
  case $loc in http*) ;; *) loc="http://$host$loc" ;; esac
  case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
  curl -fsS -X PUT -T "$file" -H 'Content-Type: application/octet-stream' -H 'Expect:' -o /dev/null \
    "$loc${sep}digest=$digest"
}
pids=()
while (($# >= 2)); do
  push "$1" "$2" &
  pids+=($!)
  shift 2
done
for pid in "${pids[@]}"; do wait "$pid"; done

#!/usr/bin/env bash
# Fetches h2load (Debian's nghttp2-client, with the libraries it needs that a
# plain Debian may lack) from this system's own suite into a private folder,
# touching none of the system's apt state. bench:grpc uses it as a second
# gRPC load generator: grpc-js's client tops out near 5-7 k unary calls/s
# on one core.
# Usage: fetch-h2load.sh DEST   (prints the h2load binary's path)
set -euo pipefail

dest=$(realpath -m "$1")
binary="$dest/root/usr/bin/h2load"
if [ ! -x "$binary" ]; then
  . /etc/os-release
  bash "$(dirname "$0")/fetch-debian-packages.sh" "$VERSION_CODENAME" "$dest" nghttp2-client libnghttp2-14 libev4 libjemalloc2 libjansson4
fi
[ -x "$binary" ] || { echo "nghttp2-client had no h2load" >&2; exit 1; }
echo "$binary"

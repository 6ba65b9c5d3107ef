#!/usr/bin/env bash
# Fetches h2load (Debian's nghttp2-client, with the libraries it needs that a
# plain Debian may lack) into a private folder, touching none of the
# system's apt state. bench:grpc uses it as a second gRPC load generator:
# grpc-js's client tops out near 5-7 k unary calls/s on one core.
# Usage: fetch-h2load.sh DEST   (prints the h2load binary's path)
set -euo pipefail

dest=$(realpath -m "$1")
binary="$dest/root/usr/bin/h2load"
if [ -x "$binary" ]; then
  echo "$binary"
  exit 0
fi

. /etc/os-release
apt_dir="$dest/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$dest/root"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian ${VERSION_CODENAME} main" \
  > "$apt_dir/sources.list"

apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache::Archives=$apt_dir/archives"
  -o "APT::Sandbox::User=root"
  -qq
)
apt-get "${apt_opts[@]}" update >&2
(cd "$apt_dir/archives" && apt-get "${apt_opts[@]}" download nghttp2-client libnghttp2-14 libev4 libjemalloc2 libjansson4 >&2)
for deb in "$apt_dir"/archives/*.deb; do dpkg -x "$deb" "$dest/root"; done

[ -x "$binary" ] || { echo "nghttp2-client had no h2load" >&2; exit 1; }
echo "$binary"

#!/usr/bin/env bash
# Fetches ONNX Runtime's C/C++ headers (Debian trixie's libonnxruntime-dev)
# into a private folder, touching none of the system's apt state. The headers
# are not on npm; the runtime library itself comes from onnxruntime-node.
# Usage: fetch-ort-headers.sh DEST   (prints the include directory)
set -euo pipefail

dest=$(realpath -m "$1")
include="$dest/root/usr/include/onnxruntime"
if [ -f "$include/onnxruntime_c_api.h" ]; then
  echo "$include"
  exit 0
fi

apt_dir="$dest/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$dest/root"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
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
(cd "$apt_dir/archives" && apt-get "${apt_opts[@]}" download libonnxruntime-dev >&2)
dpkg -x "$apt_dir"/archives/libonnxruntime-dev_*.deb "$dest/root"

[ -f "$include/onnxruntime_c_api.h" ] || { echo "libonnxruntime-dev had no onnxruntime_c_api.h" >&2; exit 1; }
echo "$include"

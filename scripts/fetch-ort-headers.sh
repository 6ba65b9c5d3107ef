#!/usr/bin/env bash
# Fetches ONNX Runtime's C/C++ headers (Debian trixie's libonnxruntime-dev)
# into a private folder, touching none of the system's apt state. The headers
# are not on npm; the runtime library itself comes from onnxruntime-node.
# Usage: fetch-ort-headers.sh DEST   (prints the include directory)
set -euo pipefail

dest=$(realpath -m "$1")
include="$dest/root/usr/include/onnxruntime"
if [ ! -f "$include/onnxruntime_c_api.h" ]; then
  bash "$(dirname "$0")/fetch-debian-packages.sh" trixie "$dest" libonnxruntime-dev
fi
[ -f "$include/onnxruntime_c_api.h" ] || { echo "libonnxruntime-dev had no onnxruntime_c_api.h" >&2; exit 1; }
echo "$include"

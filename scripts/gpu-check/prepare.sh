#!/bin/bash
# Packs what the device machine lacks into .gpu-bundle/ (ignored by git):
# this machine's node, compressed, and the C++ runtime it links against.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .gpu-bundle/lib
xz -T2 -6 -c "$(command -v node)" > .gpu-bundle/node.xz
cp -L /lib/x86_64-linux-gnu/libstdc++.so.6 /lib/x86_64-linux-gnu/libgcc_s.so.1 .gpu-bundle/lib/
du -sh .gpu-bundle

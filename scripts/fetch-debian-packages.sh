#!/usr/bin/env bash
# Downloads Debian packages from SUITE and unpacks them into DEST/root,
# with a private sources list and package lists under DEST/apt: nothing is
# installed, and the system's apt state is not touched. Shared by the
# scripts that fetch what npm does not carry (ONNX Runtime's headers, h2load).
# Usage: fetch-debian-packages.sh SUITE DEST PACKAGE...
set -euo pipefail

suite=$1
dest=$(realpath -m "$2")
shift 2

apt_dir="$dest/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$dest/root"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" \
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
(cd "$apt_dir/archives" && apt-get "${apt_opts[@]}" download "$@" >&2)
for package in "$@"; do dpkg -x "$apt_dir/archives/${package}"_*.deb "$dest/root"; done

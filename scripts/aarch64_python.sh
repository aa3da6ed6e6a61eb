#!/bin/sh
# An arm64 CPython (Debian's python3.11 and the libraries it loads), unpacked into a directory
# without installing it, so tests can import the cross-built dcgm scanner under qemu-user:
#   qemu-aarch64-static -L DIR DIR/usr/bin/python3.11 -c 'import ...'
# Needs root or sudo once (dpkg --add-architecture arm64, apt-get update).
set -eu
dir="${1:-build/aarch64-python}"
[ -x "$dir/usr/bin/python3.11" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -q
fi
debs="$dir.debs"
mkdir -p "$debs" "$dir"
cd "$debs"
apt-get download -qq python3.11-minimal:arm64 libpython3.11-minimal:arm64 libpython3.11-stdlib:arm64 \
  libc6:arm64 zlib1g:arm64 libexpat1:arm64 libffi8:arm64 libssl3:arm64 libgcc-s1:arm64 libbz2-1.0:arm64 \
  liblzma5:arm64 libcrypt1:arm64 libuuid1:arm64 libsqlite3-0:arm64 libtinfo6:arm64 libncursesw6:arm64 \
  libreadline8:arm64 libnsl2:arm64 libtirpc3:arm64 libdb5.3:arm64 libgssapi-krb5-2:arm64 libkrb5-3:arm64 \
  libk5crypto3:arm64 libkrb5support0:arm64 libcom-err2:arm64 libkeyutils1:arm64
cd - >/dev/null
for deb in "$debs"/*.deb; do dpkg -x "$deb" "$dir"; done
rm -rf "$debs"

#!/bin/sh
# Debian packages gpulake starts itself. With no arguments: everything the tests need
# (PostgreSQL 15, InfluxDB 1.6, promtool, Chromium, npm, systemd-analyze, the aarch64 cross compiler and
# qemu-user for the Lambda build of the compiled dcgm scanner); `postgres` alone is what the demo needs.
# Installs only what is missing; needs root or sudo.
set -eu
want="${*:-postgres influxdb promtool chromium npm systemd aarch64}"
need=""
have() { command -v "$1" >/dev/null 2>&1; }
for tool in $want; do
  case "$tool" in
    postgres) have initdb || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need="$need postgresql" ;;
    influxdb) have influxd || need="$need influxdb" ;;
    promtool) have promtool || need="$need prometheus" ;;
    chromium) have chromium || need="$need chromium" ;;
    npm) have npm || need="$need npm" ;;
    systemd) have systemd-analyze || need="$need systemd" ;;
    aarch64)
      have aarch64-linux-gnu-gcc || need="$need gcc-aarch64-linux-gnu"
      [ -e /usr/aarch64-linux-gnu/include/stdio.h ] || need="$need libc6-dev-arm64-cross"
      have qemu-aarch64-static || need="$need qemu-user-static"
      ;;
    *) echo "unknown tool $tool" >&2; exit 2 ;;
  esac
done
[ -z "$need" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "installing Debian packages:$need"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $need

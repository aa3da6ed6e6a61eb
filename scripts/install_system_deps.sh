#!/bin/sh
# Debian packages the tests and the demo start themselves: PostgreSQL 15 (initdb/pg_ctl),
# InfluxDB 1.6 (influxd), Prometheus (promtool), Chromium (report screenshots), Node (pglite).
# Installs only what is missing; needs root or sudo.
set -eu
need=""
have() { command -v "$1" >/dev/null 2>&1; }
have initdb || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need="$need postgresql"
have influxd || need="$need influxdb"
have promtool || need="$need prometheus"
have chromium || need="$need chromium"
have npm || need="$need npm"
[ -z "$need" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "installing Debian packages:$need"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $need

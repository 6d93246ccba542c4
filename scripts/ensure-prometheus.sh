#!/usr/bin/env bash
# Make sure Debian's prometheus package is installed: its `promtool` checks and unit-tests the alert
# rules the chart ships, and its `prometheus` binary evaluates the dashboard's queries and the rules
# against a real supervisor (tests/alerts, tests/observability). Idempotent: does nothing when both
# binaries are on PATH. Never starts a system service: test fixtures run their own server.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
    exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    as_root=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive

# Debian's maintainer scripts start the service on install unless policy-rc.d
# forbids it (exit 101); add one for the duration of the install if none exists.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
    "${as_root[@]}" chmod 755 "$policy"
    trap '"${as_root[@]}" rm -f "$policy"' EXIT
fi

install_prometheus() {
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install --yes --quiet --no-install-recommends prometheus >/dev/null
}

echo 'promtool or prometheus not found: installing the Debian package prometheus' >&2
if ! install_prometheus; then
    echo 'install failed; refreshing the package lists and retrying' >&2
    "${as_root[@]}" apt-get update --quiet >/dev/null
    install_prometheus
fi

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    echo 'promtool or prometheus is still missing after the install' >&2
    exit 1
fi

#!/usr/bin/env bash
# Make sure Debian's redis-server binary is installed, for the tests and benchmarks.
# Idempotent: does nothing when redis-server is already on PATH. Never starts a
# system service: test fixtures run their own servers on free ports.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
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

install_redis() {
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install --yes --no-install-recommends redis-server
}

echo 'redis-server not found: installing the Debian package redis-server' >&2
if ! install_redis; then
    echo 'install failed; refreshing the package lists and retrying' >&2
    "${as_root[@]}" apt-get update
    install_redis
fi

if ! command -v redis-server >/dev/null 2>&1; then
    echo 'redis-server is still missing after the install' >&2
    exit 1
fi

#!/usr/bin/env bash
# Build the real servers the test suites start (entry point of `make tools`).
#
# Each tool has its own script in scripts/tools/ that installs into .tools/bin/
# and skips the work when its stamp says the binary is up to date. To add a tool,
# add its name to TOOLS.
set -euo pipefail

TOOLS=(
    ferretdb
    helm
    etcd
    kube-apiserver
    kube-controller-manager
    kube-scheduler
    kwok
)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
for tool in "${TOOLS[@]}"; do
    echo "==> ${tool}"
    bash "${here}/tools/${tool}.sh"
done

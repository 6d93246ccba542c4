#!/usr/bin/env bash
# Build kube-apiserver into .tools/bin/kube-apiserver, from the wrapper module
# tools/kubernetes (see _kubernetes.sh, shared with the controller-manager and the
# scheduler, which come from the same release).
set -euo pipefail

KUBERNETES_VERSION="v1.37.2"

source "$(dirname "${BASH_SOURCE[0]}")/_kubernetes.sh"
build_kubernetes_command kube-apiserver

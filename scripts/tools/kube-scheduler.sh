#!/usr/bin/env bash
# Build kube-scheduler into .tools/bin/kube-scheduler, from the Kubernetes release
# kube-apiserver.sh pins (wrapper module tools/kubernetes, see _kubernetes.sh). The
# test cluster with pods runs it to bind Pods to kwok's fake nodes.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/_kubernetes.sh"
build_kubernetes_command kube-scheduler

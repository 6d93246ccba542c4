#!/usr/bin/env bash
# Build kube-controller-manager into .tools/bin/kube-controller-manager, from the
# Kubernetes release kube-apiserver.sh pins (wrapper module tools/kubernetes, see
# _kubernetes.sh). The test cluster with pods runs it: Deployments get ReplicaSets
# and Pods, and garbage collection follows owner references.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/_kubernetes.sh"
build_kubernetes_command kube-controller-manager

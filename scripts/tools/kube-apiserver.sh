#!/usr/bin/env bash
# Build kube-apiserver into .tools/bin/kube-apiserver (envtest style: the API
# server and etcd only, no kubelet or controllers).
#
# `go install k8s.io/kubernetes/cmd/kube-apiserver@tag` fails: k8s.io/kubernetes
# requires its staging modules (k8s.io/api, k8s.io/apiserver, ...) at v0.0.0 and
# replaces them with folders that are not in its published module.
# tools/kube-apiserver/go.mod is our own wrapper module: it requires
# k8s.io/kubernetes at the pinned tag, replaces every staging module it requires
# with the matching published v0.Y.Z tag, and names the command as a `tool`; the
# committed go.sum fixes every dependency.
#
# The version the server reports (/version, `--version`) is set with -ldflags -X,
# as Kubernetes' own build does; otherwise it would be v0.0.0-master and clients
# checking the server version (e.g. a chart's kubeVersion) would fail.
#
# Verified: Kubernetes v1.37.2 builds with Go 1.26.8 (GOTOOLCHAIN=local,
# CGO_ENABLED=0, -mod=readonly). To bump: change the tag in tools/kube-apiserver/go.mod
# (require and every replace line), run `go mod tidy` there with the Go
# environment of scripts/tools/_go.sh, change KUBERNETES_VERSION below, and check
# that the paired etcd (scripts/tools/etcd.sh) is the line that release uses.
set -euo pipefail

KUBERNETES_VERSION="v1.37.2"

source "$(dirname "${BASH_SOURCE[0]}")/_go.sh"
src="${root}/tools/kube-apiserver"

staging_version="v0.${KUBERNETES_VERSION#v1.}"
if ! grep -Eq "^\s*(require )?k8s\.io/kubernetes ${KUBERNETES_VERSION}( |\$)" "${src}/go.mod" \
    || grep -E '^\s+k8s\.io/\S+ => ' "${src}/go.mod" | grep -vq " ${staging_version}\$"; then
    echo "kube-apiserver: tools/kube-apiserver/go.mod does not pin Kubernetes ${KUBERNETES_VERSION}" \
        "with staging modules at ${staging_version}" >&2
    exit 1
fi

minor="${KUBERNETES_VERSION#v1.}"
minor="${minor%%.*}"
ldflags="-s -w"
for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${package}.gitVersion=${KUBERNETES_VERSION}"
    ldflags+=" -X ${package}.gitMajor=1 -X ${package}.gitMinor=${minor}"
    ldflags+=" -X ${package}.gitTreeState=clean"
done

build_wrapper_module kube-apiserver "${KUBERNETES_VERSION}" k8s.io/kubernetes/cmd/kube-apiserver \
    -ldflags="${ldflags}"

#!/usr/bin/env bash
# Build etcd into .tools/bin/etcd (the store behind kube-apiserver in tests).
#
# The etcd binary is the main package of go.etcd.io/etcd/server/v3, whose go.mod
# replaces its sibling modules (api, client, pkg) with relative paths, so
# `go install ...@tag` refuses it. tools/etcd/go.mod is our own wrapper module:
# it names the server as a `tool` and pins it and its siblings to the same tag,
# and the committed go.sum fixes every dependency.
#
# Verified: etcd v3.7.3 builds with Go 1.26.8 (GOTOOLCHAIN=local, CGO_ENABLED=0,
# -mod=readonly). Kubernetes v1.37 is tested against etcd 3.7 (kubeadm's default
# is 3.7.0); 3.7.3 is that line's newest patch. To bump: in tools/etcd run
# `go get -tool go.etcd.io/etcd/server/v3@vX.Y.Z && go mod tidy` with the Go
# environment of scripts/tools/_go.sh and change ETCD_VERSION below.
set -euo pipefail

ETCD_VERSION="v3.7.3"

source "$(dirname "${BASH_SOURCE[0]}")/_go.sh"
src="${root}/tools/etcd"

if ! grep -q "go.etcd.io/etcd/server/v3 ${ETCD_VERSION}\b" "${src}/go.mod"; then
    echo "etcd: tools/etcd/go.mod does not pin etcd ${ETCD_VERSION}" >&2
    exit 1
fi

build_wrapper_module etcd "${ETCD_VERSION}" go.etcd.io/etcd/server/v3 -ldflags='-s -w'

#!/usr/bin/env bash
# Build Helm 3 into .tools/bin/helm.
#
# helm.sh/helm/v3 has no `replace` lines, so a plain `go install pkg@tag` works.
# Helm's version string comes from source defaults ("v3.22"), so the full pinned
# tag is set with -ldflags -X, and `helm version` prints it. The Kubernetes version
# `helm template` and `helm lint` assume without a cluster also defaults to 1.20 in
# source; it is set to the Kubernetes line of Helm's client-go (1.37 for v3.22),
# as Helm's own release builds do.
#
# Verified: Helm v3.22.0 (the newest v3 tag served; it needs Go >= 1.26) builds
# with Go 1.26.8 (GOTOOLCHAIN=local, CGO_ENABLED=0).
set -euo pipefail

HELM_VERSION="v3.22.0"
KUBE_MINOR="37"  # k8s.io/client-go v0.37.x in Helm v3.22.0's go.mod

source "$(dirname "${BASH_SOURCE[0]}")/_go.sh"

helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
for package in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    helm_ldflags+=" -X ${package}.k8sVersionMajor=1 -X ${package}.k8sVersionMinor=${KUBE_MINOR}"
done

build_helm() {
    local gobin
    gobin="$(mktemp -d)"
    GOBIN="${gobin}" "${go_bin}" install -trimpath -ldflags="${helm_ldflags}" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
    mv -f "${gobin}/helm" "${out}"
    rmdir "${gobin}"
}

install_tool helm "helm=${HELM_VERSION} kubernetes=1.${KUBE_MINOR} ${go_version}" build_helm

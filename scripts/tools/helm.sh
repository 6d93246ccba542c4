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

want="helm=${HELM_VERSION} kubernetes=1.${KUBE_MINOR} ${go_version}"
if stamp_is_current helm "${want}"; then
    echo "helm ${HELM_VERSION}: up to date (${bin_dir}/helm)"
    exit 0
fi

echo "helm ${HELM_VERSION}: building with ${go_version} ..."
mkdir -p "${bin_dir}"
rm -f "${stamp_dir}/helm"
GOBIN="${bin_dir}" "${go_bin}" install -trimpath \
    -ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} \
        -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${KUBE_MINOR} \
        -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${KUBE_MINOR}" \
    "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
stamp_write helm "${want}"
echo "helm ${HELM_VERSION}: built ${bin_dir}/helm"

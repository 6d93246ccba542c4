#!/usr/bin/env bash
# Build Helm 3 into .tools/bin/helm.
#
# helm.sh/helm/v3 has no `replace` lines, so a plain `go install pkg@tag` works.
# Helm's version string comes from source defaults ("v3.22"), so the full pinned
# tag is set with -ldflags -X, and `helm version` prints it.
#
# Verified: Helm v3.22.0 (the newest v3 tag served; it needs Go >= 1.26) builds
# with Go 1.26.8 (GOTOOLCHAIN=local, CGO_ENABLED=0).
set -euo pipefail

HELM_VERSION="v3.22.0"

source "$(dirname "${BASH_SOURCE[0]}")/_go.sh"

want="helm=${HELM_VERSION} ${go_version}"
if stamp_is_current helm "${want}"; then
    echo "helm ${HELM_VERSION}: up to date (${bin_dir}/helm)"
    exit 0
fi

echo "helm ${HELM_VERSION}: building with ${go_version} ..."
mkdir -p "${bin_dir}"
rm -f "${stamp_dir}/helm"
GOBIN="${bin_dir}" "${go_bin}" install -trimpath \
    -ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" \
    "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
stamp_write helm "${want}"
echo "helm ${HELM_VERSION}: built ${bin_dir}/helm"

# Shared by kube-apiserver.sh, kube-controller-manager.sh and kube-scheduler.sh
# (sourced, not run): the three commands come from one Kubernetes release, built in
# one wrapper module, tools/kubernetes.
#
# `go install k8s.io/kubernetes/cmd/kube-apiserver@tag` fails: k8s.io/kubernetes
# requires its staging modules (k8s.io/api, k8s.io/apiserver, ...) at v0.0.0 and
# replaces them with folders that are not in its published module.
# tools/kubernetes/go.mod is our own wrapper module: it requires k8s.io/kubernetes
# at the pinned tag, replaces every staging module it requires with the matching
# published v0.Y.Z tag, and names the commands as `tool`s; the committed go.sum
# fixes every dependency.
#
# The version each command reports (/version, `--version`) is set with -ldflags -X,
# as Kubernetes' own build does; otherwise it would be v0.0.0-master and clients
# checking the server version (e.g. a chart's kubeVersion) would fail.
#
# Verified: Kubernetes v1.37.2 builds with Go 1.26.8 (GOTOOLCHAIN=local,
# CGO_ENABLED=0, -mod=readonly). To bump: change the tag in tools/kubernetes/go.mod
# (require and every replace line), run `go mod tidy` there with the Go environment
# of scripts/tools/_go.sh, change KUBERNETES_VERSION in kube-apiserver.sh, and check
# that the paired etcd (scripts/tools/etcd.sh) is the line that release uses.

source "$(dirname "${BASH_SOURCE[0]}")/_go.sh"

# KUBERNETES_VERSION is pinned in kube-apiserver.sh (tests read it there).
if [[ -z "${KUBERNETES_VERSION:-}" ]]; then
    KUBERNETES_VERSION="$(sed -n 's/^KUBERNETES_VERSION="\(v[^"]*\)"$/\1/p' \
        "$(dirname "${BASH_SOURCE[0]}")/kube-apiserver.sh")"
fi
kubernetes_src="${root}/tools/kubernetes"

staging_version="v0.${KUBERNETES_VERSION#v1.}"
if ! grep -Eq "^\s*(require )?k8s\.io/kubernetes ${KUBERNETES_VERSION}( |\$)" "${kubernetes_src}/go.mod" \
    || grep -E '^\s+k8s\.io/\S+ => ' "${kubernetes_src}/go.mod" | grep -vq " ${staging_version}\$"; then
    echo "tools/kubernetes/go.mod does not pin Kubernetes ${KUBERNETES_VERSION}" \
        "with staging modules at ${staging_version}" >&2
    exit 1
fi

kubernetes_minor="${KUBERNETES_VERSION#v1.}"
kubernetes_minor="${kubernetes_minor%%.*}"
kubernetes_ldflags="-s -w"
for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    kubernetes_ldflags+=" -X ${package}.gitVersion=${KUBERNETES_VERSION}"
    kubernetes_ldflags+=" -X ${package}.gitMajor=1 -X ${package}.gitMinor=${kubernetes_minor}"
    kubernetes_ldflags+=" -X ${package}.gitTreeState=clean"
done

# build_kubernetes_command NAME: build k8s.io/kubernetes/cmd/NAME into .tools/bin/NAME.
build_kubernetes_command() {
    if ! grep -Eq "^\s*(tool )?k8s\.io/kubernetes/cmd/$1\$" "${kubernetes_src}/go.mod"; then
        echo "$1: tools/kubernetes/go.mod does not name k8s.io/kubernetes/cmd/$1 as a tool" >&2
        exit 1
    fi
    build_in_module "$1" "${kubernetes_src}" "${KUBERNETES_VERSION}" "k8s.io/kubernetes/cmd/$1" \
        -ldflags="${kubernetes_ldflags}"
}

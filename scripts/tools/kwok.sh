#!/usr/bin/env bash
# Build kwok into .tools/bin/kwok and gather its stage definitions into
# .tools/etc/kwok-stages.yaml.
#
# kwok (sigs.k8s.io/kwok) registers fake nodes with the test API server and plays
# the kubelet's part for the pods scheduled to them: they turn Running and Ready,
# and a deleted pod goes away, with no container run. sigs.k8s.io/kwok has no
# `replace` lines, so a plain `go install pkg@tag` works.
#
# kwok refuses to start without stage definitions ("no stages found"). Its module
# ships them as YAML; the ones for fast nodes and pods are joined into one file
# passed to `kwok --config` (tests/servers/kube_cluster.py), taken from the module
# cache at the pinned tag, so they always match the binary.
#
# Verified: kwok v0.8.0 (the newest tag served; it needs Go >= 1.26) builds with
# Go 1.26.8 (GOTOOLCHAIN=local, CGO_ENABLED=0).
set -euo pipefail

KWOK_VERSION="v0.8.0"
STAGES=(
    kustomize/stage/node/fast/node-initialize.yaml
    kustomize/stage/node/heartbeat/node-heartbeat.yaml
    kustomize/stage/pod/fast/pod-ready.yaml
    kustomize/stage/pod/fast/pod-complete.yaml
    kustomize/stage/pod/fast/pod-delete.yaml
)

source "$(dirname "${BASH_SOURCE[0]}")/_go.sh"

kwok_ldflags="-s -w"  # its version string (pkg/consts.Version) is already the tag in source

build_kwok() {
    local gobin
    gobin="$(mktemp -d)"
    GOBIN="${gobin}" "${go_bin}" install -trimpath -ldflags="${kwok_ldflags}" "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
    mv -f "${gobin}/kwok" "${out}"
    rmdir "${gobin}"
}

install_tool kwok "kwok=${KWOK_VERSION} ${go_version}" build_kwok

module_dir="$("${go_bin}" mod download -json "sigs.k8s.io/kwok@${KWOK_VERSION}" \
    | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')"
stages="${root}/.tools/etc/kwok-stages.yaml"
mkdir -p "$(dirname "${stages}")"
{
    for stage in "${STAGES[@]}"; do
        echo "---"
        cat "${module_dir}/${stage}"
    done
} >"${stages}.tmp"
mv -f "${stages}.tmp" "${stages}"
echo "kwok: stages in ${stages}"

#!/usr/bin/env bash
# Build the sergeant-worker and sergeant-operator images with podman (entry point of `make images`).
#
#   1. installs podman, buildah, runc, uidmap, slirp4netns, fuse-overlayfs and mmdebstrap if missing;
#   2. makes sure the base image exists: container registries cannot be reached here, so a stand-in for
#      python:<minor>-slim-<release> (the same Debian release and Python minor version) is made once
#      with mmdebstrap, kept as a tarball in the cache below, and imported under the official name
#      (localhost/python:...) only when podman does not have it;
#   3. builds the sergeant wheel and downloads every dependency's wheel for the image's Python on this
#      host (dependency wheels cached, keyed by constraints.txt, Python version and architecture);
#   4. builds both images offline from those wheels (WHEELS=prebuilt), tagged with the package
#      version and `latest`, and prints each image's size and what it adds over the base.
#
# The cache lives outside the clone, so a fresh clone on the same machine reuses it:
# ${SERGEANT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sergeant}/images. An image whose label io.sergeant.source-digest
# matches the digest of what it is built from (pyproject.toml, constraints.txt, sergeant/, operator/,
# its Dockerfile) is kept as it is; IMAGES_FORCE=1 rebuilds it anyway. The tests call this script too.
set -euo pipefail

DEBIAN_RELEASE=trixie
PYTHON_MINOR=3.13
BASE="python:${PYTHON_MINOR}-slim-${DEBIAN_RELEASE}"
SOURCE_URL="${SERGEANT_SOURCE_URL:-https://github.com/Intsights/Sergeant}"
PACKAGES=(podman buildah runc uidmap slirp4netns fuse-overlayfs mmdebstrap)

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${SERGEANT_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/sergeant}/images"

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    as_root=(sudo)
fi

log() { printf '==> %s\n' "$*" >&2; }

install_packages() {
    local missing=() package
    for package in "${PACKAGES[@]}"; do
        if ! dpkg-query --show --showformat='${Status}' "$package" 2>/dev/null | grep -q 'ok installed'; then
            missing+=("$package")
        fi
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    log "installing ${missing[*]}"
    if ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install --yes --quiet --quiet \
        "${missing[@]}" >/dev/null; then
        "${as_root[@]}" apt-get update --quiet --quiet
        "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install --yes --quiet --quiet \
            "${missing[@]}" >/dev/null
    fi
}

# The stand-in: Debian's minimal variant with its Python, venv and pip, `python` as python3 (as in the
# official image), no documentation, no apt lists; ENV and CMD as the official image sets them.
ensure_base() {
    if podman image exists "localhost/${BASE}"; then
        return 0
    fi
    local tarball="${cache}/${BASE/:/-}.tar"
    if [ ! -s "$tarball" ]; then
        log "building a stand-in for ${BASE} with mmdebstrap (once; cached in ${tarball})"
        mkdir -p "$cache"
        mmdebstrap --quiet --variant=minbase --format=tar \
            --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
            --aptopt='APT::Install-Recommends "false"' \
            --dpkgopt='path-exclude=/usr/share/man/*' \
            --dpkgopt='path-exclude=/usr/share/info/*' \
            --dpkgopt='path-exclude=/usr/share/locale/*' \
            --dpkgopt='path-exclude=/usr/share/doc/*' \
            --dpkgopt='path-include=/usr/share/doc/*/copyright' \
            --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
            "$DEBIAN_RELEASE" "${tarball}.partial"
        mv "${tarball}.partial" "$tarball"
    fi
    log "importing ${tarball} as localhost/${BASE}"
    podman import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        "$tarball" "localhost/${BASE}" >/dev/null
    local found
    found="$(podman run --rm --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
        --network none "localhost/${BASE}" python -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    if [ "$found" != "$PYTHON_MINOR" ]; then
        echo "the stand-in for ${BASE} has Python ${found}" >&2
        exit 1
    fi
}

# Wheels for the image's interpreter, not this host's: the host's Python may be another version, so
# the dependencies are downloaded as binary wheels for CPython ${PYTHON_MINOR} on manylinux (glibc
# up to Debian ${DEBIAN_RELEASE}'s), at the versions of constraints.txt.
build_wheels() {
    local wheels="$1" python arch key deps platforms=() minor
    python="$(command -v "${repo}/.venv/bin/python" || command -v python3)"
    arch="$(uname -m)"
    key="$(cat "${repo}/constraints.txt" "${repo}/pyproject.toml" | sha256sum | cut -c1-16)"
    deps="${cache}/wheels/cp${PYTHON_MINOR/./}-${arch}-${key}"
    mkdir -p "$wheels"
    log 'building the sergeant wheel'
    # setuptools' warnings go to a log, shown only if the build fails
    if ! "$python" -m pip wheel --quiet --no-deps --no-cache-dir --wheel-dir "$wheels" "$repo" \
        >"${wheels}/../wheel.log" 2>&1; then
        cat "${wheels}/../wheel.log" >&2
        exit 1
    fi
    if [ ! -e "${deps}/.complete" ]; then
        log "downloading dependency wheels for CPython ${PYTHON_MINOR} (once; cached in ${deps})"
        for minor in $(seq 17 41); do
            platforms+=(--platform "manylinux_2_${minor}_${arch}")
        done
        rm -rf "$deps" && mkdir -p "$deps"
        "$python" -m pip download --quiet --no-cache-dir --only-binary=:all: \
            --python-version "$PYTHON_MINOR" --implementation cp \
            --platform "manylinux2014_${arch}" "${platforms[@]}" \
            --constraint "${repo}/constraints.txt" --dest "$deps" \
            "$(echo "$wheels"/sergeant-*.whl)[operator]"
        rm -f "$deps"/sergeant-*.whl
        touch "${deps}/.complete"
    fi
    cp "$deps"/*.whl "$wheels"/
}

# What an image is built from, as one digest: the files of the build context and the Dockerfile.
source_digest() {
    (
        cd "$repo"
        find pyproject.toml constraints.txt README.md LICENSE sergeant operator "docker/$1.Dockerfile" \
            -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 \
            | LC_ALL=C sort --zero-terminated | xargs --null sha256sum | sha256sum | cut -c1-32
    )
}

size_of() { podman image inspect --format '{{.Size}}' "$1"; }
megabytes() { awk -v bytes="$1" 'BEGIN { printf "%.1f MB", bytes / 1e6 }'; }

work=''
main() {
    install_packages
    local version
    version="$(sed -n 's/^version = "\(.*\)"/\1/p' "${repo}/pyproject.toml" | head -n 1)"
    local wanted=() name built
    declare -A digests
    for name in worker operator; do
        digests[$name]="$(source_digest "$name")"
        built="$(podman image inspect --format '{{index .Labels "io.sergeant.source-digest"}}' \
            "localhost/sergeant-${name}:${version}" 2>/dev/null || true)"
        if [ "${IMAGES_FORCE:-0}" = 1 ] || [ "$built" != "${digests[$name]}" ]; then
            wanted+=("$name")
        fi
    done
    ensure_base
    if [ "${#wanted[@]}" -gt 0 ]; then
        work="$(mktemp -d "${TMPDIR:-/tmp}/sergeant-images.XXXXXX")"
        trap 'rm -rf "$work"' EXIT  # global: the trap runs after main returns
        build_wheels "${work}/wheels"
        for name in "${wanted[@]}"; do
            log "building sergeant-${name}:${version}"
            podman build --quiet --format docker --runtime runc --network host --pull=never \
                --file "${repo}/docker/${name}.Dockerfile" \
                --build-arg "PYTHON_IMAGE=localhost/${BASE}" \
                --build-arg WHEELS=prebuilt --build-context "wheels=${work}/wheels" \
                --build-arg "VERSION=${version}" --build-arg "SOURCE_URL=${SOURCE_URL}" \
                --label "io.sergeant.source-digest=${digests[$name]}" \
                --tag "localhost/sergeant-${name}:${version}" --tag "localhost/sergeant-${name}:latest" \
                "$repo" >/dev/null
        done
    fi
    local base_size size
    base_size="$(size_of "localhost/${BASE}")"
    printf '%-34s %10s\n' "localhost/${BASE}" "$(megabytes "$base_size")"
    for name in worker operator; do
        size="$(size_of "localhost/sergeant-${name}:${version}")"
        printf '%-34s %10s  (base + %s)\n' "localhost/sergeant-${name}:${version}" \
            "$(megabytes "$size")" "$(megabytes $((size - base_size)))"
    done
}

main

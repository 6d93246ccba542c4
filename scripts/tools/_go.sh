# Shared by the Go tool scripts in this folder (sourced, not run): finds Go, keeps
# its caches outside the clone and manages build stamps.
#
# A stamp in .tools/stamps/<tool> records what the binary was built from (pinned
# versions, a hash of the wrapper module, the Go version); when it matches, a run
# does nothing.
#
# Fresh clones (CI clones main afresh for every run) would rebuild every tool from
# scratch with a cache inside the clone, so the Go caches and every finished binary
# live under ${SERGEANT_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/sergeant}: binaries
# in tools/<tool>/<sha256 of the stamp>/, so a pin or wrapper change builds anew
# and an unchanged one is copied into .tools/bin/ in a moment.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin_dir="${root}/.tools/bin"
stamp_dir="${root}/.tools/stamps"

if command -v go >/dev/null 2>&1; then
    go_bin="$(command -v go)"
elif [[ -x /usr/local/go/bin/go ]]; then
    go_bin=/usr/local/go/bin/go
else
    echo "Go is not installed (the pinned tools need Go >= 1.26)" >&2
    exit 1
fi

cache_root="${SERGEANT_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/sergeant}"
export GOPATH="${cache_root}/go/path"
export GOMODCACHE="${cache_root}/go/mod"
export GOCACHE="${cache_root}/go/build"
export GOTOOLCHAIN=local
export CGO_ENABLED=0
go_version="$("${go_bin}" env GOVERSION)"

# Hash of every file of a wrapper module (go.mod, go.sum and any Go source).
module_hash() {
    (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

# stamp_is_current TOOL WANT: true when .tools/bin/TOOL exists and its stamp reads WANT.
stamp_is_current() {
    [[ -x "${bin_dir}/$1" && -f "${stamp_dir}/$1" && "$(cat "${stamp_dir}/$1")" == "$2" ]]
}

# stamp_write TOOL WANT
stamp_write() {
    mkdir -p "${stamp_dir}"
    echo "$2" >"${stamp_dir}/$1"
}

# cached_binary TOOL WANT: the path where the binary built for WANT is kept.
cached_binary() {
    local key
    key="$(printf '%s' "$2" | sha256sum | cut -d' ' -f1)"
    echo "${cache_root}/tools/$1/${key}/$1"
}

# install_tool TOOL WANT BUILD_COMMAND...: make .tools/bin/TOOL the binary for WANT.
# Up to date: nothing. Cached outside the clone: copied. Otherwise BUILD_COMMAND
# runs with $out set to a temporary path it must write the binary to.
install_tool() {
    local tool="$1" want="$2"
    shift 2
    if stamp_is_current "${tool}" "${want}"; then
        echo "${tool}: up to date (${bin_dir}/${tool})"
        return 0
    fi
    local cached
    cached="$(cached_binary "${tool}" "${want}")"
    if [[ ! -x "${cached}" ]]; then
        echo "${tool}: building with ${go_version} (${want}) ..."
        mkdir -p "$(dirname "${cached}")"
        out="${cached}.tmp.$$"
        "$@"
        mv -f "${out}" "${cached}"
    else
        echo "${tool}: cached build found"
    fi
    mkdir -p "${bin_dir}"
    rm -f "${stamp_dir}/${tool}"
    cp -f "${cached}" "${bin_dir}/${tool}.tmp"
    mv -f "${bin_dir}/${tool}.tmp" "${bin_dir}/${tool}"
    stamp_write "${tool}" "${want}"
    echo "${tool}: installed ${bin_dir}/${tool}"
}

# build_wrapper_module TOOL VERSION PACKAGE [go build flags...]: build PACKAGE in
# the wrapper module tools/TOOL into .tools/bin/TOOL with -mod=readonly against its
# committed go.sum, unless the stamp (version, module hash, Go version) is current.
build_wrapper_module() {
    local tool="$1"
    shift
    build_in_module "${tool}" "${root}/tools/${tool}" "$@"
}

# build_in_module TOOL MODULE_DIR VERSION PACKAGE [go build flags...]: the same, for a
# wrapper module that several tools share (tools/kubernetes builds three commands).
build_in_module() {
    local tool="$1" version="$3" package="$4"
    wrapper_src="$2"
    shift 4
    wrapper_package="${package}"
    wrapper_flags=("$@")
    install_tool "${tool}" "${tool}=${version} sources=$(module_hash "${wrapper_src}") ${go_version}" \
        _build_in_wrapper
}

_build_in_wrapper() {
    (
        cd "${wrapper_src}"
        GOFLAGS=-mod=readonly "${go_bin}" build -trimpath "${wrapper_flags[@]}" -o "${out}" "${wrapper_package}"
    )
}

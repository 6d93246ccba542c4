# Shared by the Go tool scripts in this folder (sourced, not run): finds Go, keeps
# its caches in the git-ignored .cache/go/ folder and manages build stamps.
#
# A stamp in .tools/stamps/<tool> records what the binary was built from (pinned
# versions, a hash of the wrapper module, the Go version); when it matches, a run
# does nothing.

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

export GOPATH="${root}/.cache/go/path"
export GOMODCACHE="${root}/.cache/go/mod"
export GOCACHE="${root}/.cache/go/build"
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

# build_wrapper_module TOOL VERSION PACKAGE [go build flags...]: build PACKAGE in
# the wrapper module tools/TOOL into .tools/bin/TOOL with -mod=readonly against its
# committed go.sum, unless the stamp (version, module hash, Go version) is current.
build_wrapper_module() {
    local tool="$1" version="$2" package="$3"
    shift 3
    local src="${root}/tools/${tool}"
    local want
    want="${tool}=${version} sources=$(module_hash "${src}") ${go_version}"
    if stamp_is_current "${tool}" "${want}"; then
        echo "${tool} ${version}: up to date (${bin_dir}/${tool})"
        return 0
    fi
    echo "${tool} ${version}: building with ${go_version} ..."
    mkdir -p "${bin_dir}"
    rm -f "${stamp_dir}/${tool}"
    (
        cd "${src}"
        GOFLAGS=-mod=readonly "${go_bin}" build -trimpath "$@" -o "${bin_dir}/${tool}.tmp" "${package}"
    )
    mv -f "${bin_dir}/${tool}.tmp" "${bin_dir}/${tool}"
    stamp_write "${tool}" "${want}"
    echo "${tool} ${version}: built ${bin_dir}/${tool}"
}

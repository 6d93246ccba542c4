#!/usr/bin/env bash
# Build FerretDB (MongoDB wire protocol on SQLite) into .tools/bin/ferretdb.
#
# The binary is our own tiny main (tools/ferretdb/main.go) around FerretDB's
# embeddable package: `go install .../cmd/ferretdb@tag` compiles but panics at
# start, because its build/version package wants a version.txt that is not in the
# published module.
#
# Verified: FerretDB v1.24.0 builds with Go 1.26.8 (GOTOOLCHAIN=local,
# CGO_ENABLED=0, -mod=readonly against the committed go.sum, tag
# ferretdb_no_postgresql). The version is pinned in tools/ferretdb/go.mod; bump it
# there (and run `go mod tidy` with the env below) and the stamp forces a rebuild.
#
# Go's module, build and path caches live in the git-ignored .cache/go/ folder.
# A warm run rebuilds nothing: the stamp records the pinned version, the Go
# version and a hash of tools/ferretdb/*.
set -euo pipefail

FERRETDB_VERSION="v1.24.0"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
src="${root}/tools/ferretdb"
bin="${root}/.tools/bin/ferretdb"
stamp="${root}/.tools/stamps/ferretdb"

if command -v go >/dev/null 2>&1; then
    go_bin="$(command -v go)"
elif [[ -x /usr/local/go/bin/go ]]; then
    go_bin=/usr/local/go/bin/go
else
    echo "ferretdb: Go is not installed (need Go >= 1.22)" >&2
    exit 1
fi

if ! grep -q "github.com/FerretDB/FerretDB ${FERRETDB_VERSION}\$" "${src}/go.mod"; then
    echo "ferretdb: tools/ferretdb/go.mod does not pin FerretDB ${FERRETDB_VERSION}" >&2
    exit 1
fi

export GOPATH="${root}/.cache/go/path"
export GOMODCACHE="${root}/.cache/go/mod"
export GOCACHE="${root}/.cache/go/build"
export GOTOOLCHAIN=local
export GOFLAGS=-mod=readonly
export CGO_ENABLED=0

sources_hash="$(cd "${src}" && sha256sum go.mod go.sum ./*.go | sha256sum | cut -d' ' -f1)"
want="ferretdb=${FERRETDB_VERSION} sources=${sources_hash} $("${go_bin}" env GOVERSION)"

if [[ -x "${bin}" && -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
    echo "ferretdb ${FERRETDB_VERSION}: up to date (${bin})"
    exit 0
fi

echo "ferretdb ${FERRETDB_VERSION}: building with $("${go_bin}" env GOVERSION) ..."
mkdir -p "$(dirname "${bin}")" "$(dirname "${stamp}")"
rm -f "${stamp}"
(
    cd "${src}"
    "${go_bin}" build -trimpath -tags ferretdb_no_postgresql -ldflags='-s -w' -o "${bin}.tmp" .
)
mv -f "${bin}.tmp" "${bin}"
echo "${want}" >"${stamp}"
echo "ferretdb ${FERRETDB_VERSION}: built ${bin}"

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
# there (and run `go mod tidy` with the Go environment of scripts/tools/_go.sh) and
# the stamp forces a rebuild.
set -euo pipefail

FERRETDB_VERSION="v1.24.0"

source "$(dirname "${BASH_SOURCE[0]}")/_go.sh"
src="${root}/tools/ferretdb"

if ! grep -q "github.com/FerretDB/FerretDB ${FERRETDB_VERSION}\$" "${src}/go.mod"; then
    echo "ferretdb: tools/ferretdb/go.mod does not pin FerretDB ${FERRETDB_VERSION}" >&2
    exit 1
fi

build_wrapper_module ferretdb "${FERRETDB_VERSION}" . -tags ferretdb_no_postgresql -ldflags='-s -w'

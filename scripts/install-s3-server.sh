#!/usr/bin/env bash
# Installs the S3-compatible server that Zombi's tests run against: versitygw
# (its posix backend serves a local directory over the S3 API) into
# ${ZOMBI_CACHE:-$HOME/.cache/zombi}/bin. internal/testenv looks for it there
# and on PATH.
#
# Idempotent: when the pinned version is already installed it does nothing.
# A fresh install builds from source with `go install` (about 2 minutes on 2
# cores).
set -euo pipefail

version=v1.8.0
module=github.com/versity/versitygw/cmd/versitygw

bin_dir="${ZOMBI_CACHE:-$HOME/.cache/zombi}/bin"
bin="$bin_dir/versitygw"
stamp="$bin_dir/.versitygw.version"

if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$version" ]]; then
	echo "install-s3-server: versitygw $version already installed at $bin"
	exit 0
fi

if ! command -v go >/dev/null; then
	echo "install-s3-server: go is not on PATH" >&2
	exit 1
fi

echo "install-s3-server: building versitygw $version with go install (takes a few minutes)"
mkdir -p "$bin_dir"
tmp="$(mktemp -d "$bin_dir/.install.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

start=$SECONDS
GOBIN="$tmp" go install -trimpath "$module@$version"
mv -f "$tmp/versitygw" "$bin"
echo "$version" >"$stamp"
echo "install-s3-server: installed $bin in $((SECONDS - start))s"

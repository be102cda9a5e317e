#!/usr/bin/env bash
# Installs the S3-compatible servers that Zombi's tests run against into
# ${ZOMBI_CACHE:-$HOME/.cache/zombi}/bin, where internal/testenv looks for
# them (and then on PATH):
#   - versitygw, whose posix backend serves a local directory over the S3
#     API: the S3 server of most tests;
#   - minio, for the tests that need an STS (AssumeRole with a session
#     policy): vended credentials.
#
# Idempotent: a server whose pinned version is already installed is left
# alone. A fresh install builds from source with `go install` (versitygw
# about 2 minutes on 2 cores, minio about 6).
set -euo pipefail

bin_dir="${ZOMBI_CACHE:-$HOME/.cache/zombi}/bin"

if ! command -v go >/dev/null; then
	echo "install-s3-server: go is not on PATH" >&2
	exit 1
fi

# install_server NAME MODULE VERSION builds MODULE@VERSION into $bin_dir/NAME.
install_server() {
	local name=$1 module=$2 version=$3
	local bin="$bin_dir/$name" stamp="$bin_dir/.$name.version"
	if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$version" ]]; then
		echo "install-s3-server: $name $version already installed at $bin"
		return
	fi
	echo "install-s3-server: building $name $version with go install (takes a few minutes)"
	mkdir -p "$bin_dir"
	local tmp
	tmp="$(mktemp -d "$bin_dir/.install.XXXXXX")"
	local start=$SECONDS
	if ! GOBIN="$tmp" go install -trimpath "$module@$version"; then
		rm -rf "$tmp"
		return 1
	fi
	mv -f "$tmp/$name" "$bin"
	rm -rf "$tmp"
	echo "$version" >"$stamp"
	echo "install-s3-server: installed $bin in $((SECONDS - start))s"
}

install_server versitygw github.com/versity/versitygw/cmd/versitygw v1.8.0
# MinIO publishes no semantic versions to the Go module proxy: this is the
# pseudo-version of its last commit there.
install_server minio github.com/minio/minio v0.0.0-20260212201848-7aac2a2c5b7c

#!/usr/bin/env bash
# Installs promtool, Prometheus's rule checker and rule unit-test runner,
# into ${ZOMBI_CACHE:-$HOME/.cache/zombi}/bin for scripts/check-deploy.sh,
# and prints its path.
#
# promtool comes from Debian's prometheus package, unpacked, not
# installed: nothing of the Prometheus server is set up or started. That
# takes seconds; building it from the Go module proxy took about 9
# minutes and 3.6 GB of cache on 2 busy cores. Idempotent: a promtool of
# the package version already there is left alone.
set -euo pipefail

bin_dir="${ZOMBI_CACHE:-$HOME/.cache/zombi}/bin"
bin="$bin_dir/promtool" stamp="$bin_dir/.promtool.version"

sudo_=""; [ "$(id -u)" -ne 0 ] && sudo_="sudo"
version="$(apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ {print $2}')"
if [[ -z "$version" || "$version" == "(none)" ]]; then
	$sudo_ apt-get update -qq >&2
	version="$(apt-cache policy prometheus | awk '/Candidate:/ {print $2}')"
fi
if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$version" ]]; then
	echo "$bin"
	exit 0
fi
mkdir -p "$bin_dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" # apt-get download writes as user _apt where it can
(cd "$tmp" && apt-get download -qq "prometheus=$version" >&2)
dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
mv -f "$tmp/x/usr/bin/promtool" "$bin"
echo "$version" >"$stamp"
echo "install-promtool: promtool from Debian's prometheus $version" >&2
echo "$bin"

#!/usr/bin/env bash
# coredns.sh provides bin/coredns: CoreDNS built from its Go module at a pinned
# version, the peer of dnsd's differential test and benchmark.
#
# No prebuilt binary can be downloaded here, so CoreDNS is built with
# `go install github.com/coredns/coredns@VERSION` (its go.mod has no replace
# directives, so the module builds as published; only the Go module proxy is
# contacted). The binary is cached per user, keyed by version, under
# ${PODDNS_CACHE:-~/.cache/poddns}/coredns/VERSION and linked into bin/coredns.
# A lock in the cache makes concurrent runs wait for one build; the binary is
# moved into the cache only once it is complete and runs.
#
# Environment: GO (go command, default go), PODDNS_CACHE (cache root),
# COREDNS_VERSION (module version, default below).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

GO=${GO:-go}
version=${COREDNS_VERSION:-v1.14.7}
log() { printf 'coredns: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v "$GO" >/dev/null 2>&1 || die "'$GO' not found: install Go (see go.mod for the version)"

cache="${PODDNS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/poddns}/coredns"
dir="$cache/$version"
mkdir -p "$dir" "$root/bin"

# runs BINARY: the binary exists and prints its version.
runs() { [ -x "$1" ] && "$1" -version >/dev/null 2>&1; }

build() {
	local start tmpbin built
	start=$(date +%s)
	tmpbin=$(mktemp -d "$dir/.build.XXXXXX")
	trap 'rm -rf "$tmpbin"' EXIT
	log "building CoreDNS $version from the github.com/coredns/coredns module (a few minutes)"
	GOBIN="$tmpbin" CGO_ENABLED=0 GOFLAGS=-mod=mod "$GO" install -trimpath -ldflags '-s -w' \
		"github.com/coredns/coredns@$version" ||
		die "building CoreDNS $version failed (is the Go module proxy reachable?)"
	built="$tmpbin/coredns"
	runs "$built" || die "the CoreDNS just built does not run: $built"
	mv -f "$built" "$dir/coredns" # atomic: same file system
	rm -rf "$tmpbin"
	trap - EXIT
	log "built CoreDNS $version in $(($(date +%s) - start))s into $dir"
}

if runs "$dir/coredns"; then
	log "CoreDNS $version from cache $dir"
else
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$cache/.$version.lock"
		flock -n 9 || { log "another run is building CoreDNS $version; waiting for it"; flock 9; }
	else
		log "warning: flock not found (util-linux); not locking"
	fi
	if runs "$dir/coredns"; then
		log "CoreDNS $version from cache $dir (built by another run)"
	else
		build
	fi
fi
ln -sfn "$dir/coredns" "$root/bin/coredns"
"$root/bin/coredns" -version >&2 || die "$root/bin/coredns does not run"

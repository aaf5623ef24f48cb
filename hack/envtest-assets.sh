#!/usr/bin/env bash
# envtest-assets.sh provides kube-apiserver and etcd for envtest in bin/envtest/.
#
# No prebuilt binary can be downloaded here, so kube-apiserver is built from the
# k8s.io/kubernetes Go module at the version matching k8s.io/api in go.mod: a
# throwaway module requires k8s.io/kubernetes and replaces every k8s.io/* staging
# module that its go.mod points at ./staging/... by the same-version published
# module. etcd is Debian's etcd-server binary when present, otherwise built from
# the etcd Go module.
#
# Both are cached per user, keyed by version, under ${PODDNS_CACHE:-~/.cache/poddns}
# so that a fresh clone on the same machine links them instead of rebuilding.
# A lock in the cache makes concurrent runs wait for one build instead of
# building twice; a binary is moved into the cache only once it is complete
# and runs.
#
# Environment: GO (go command, default go), PODDNS_CACHE (cache root),
# ETCD_VERSION (etcd module version when building etcd).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

GO=${GO:-go}
log() { printf 'envtest-assets: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v "$GO" >/dev/null 2>&1 || die "'$GO' not found: install Go (see go.mod for the version)"

api_version=$("$GO" list -m -f '{{.Version}}' k8s.io/api 2>/dev/null || true)
if [ -z "$api_version" ]; then
	api_version=$(awk '$1=="k8s.io/api"{print $2}' go.mod)
fi
case "$api_version" in
v0.*.*) ;;
*) die "cannot read the k8s.io/api version from go.mod (got '${api_version}')" ;;
esac
# k8s.io/api v0.X.Y goes with k8s.io/kubernetes v1.X.Y.
kube_version="v1.${api_version#v0.}"
etcd_module_version="${ETCD_VERSION:-v3.5.21}"

cache="${PODDNS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/poddns}/envtest"
kube_dir="$cache/kube-apiserver-$kube_version"
out="$root/bin/envtest"
mkdir -p "$out" "$kube_dir"

# lock FILE: hold an exclusive lock on FILE until the script exits.
lock() {
	if ! command -v flock >/dev/null 2>&1; then
		log "warning: flock not found (util-linux); not locking $1"
		return
	fi
	exec 9>"$1"
	if ! flock -n 9; then
		log "another run holds $1 (building?); waiting for it"
		flock 9
	fi
}

# runs BINARY: the binary exists and prints its version.
runs() { [ -x "$1" ] && "$1" --version >/dev/null 2>&1; }

build_kube_apiserver() {
	local work gomod start tmp
	start=$(date +%s)
	work=$(mktemp -d)
	tmp="$kube_dir/.kube-apiserver.tmp.$$"
	trap 'rm -rf "$work" "$tmp"' EXIT
	log "building kube-apiserver $kube_version from the k8s.io/kubernetes module (several minutes)"
	gomod=$(cd "$work" && GOFLAGS=-mod=mod "$GO" mod download -json "k8s.io/kubernetes@$kube_version" |
		sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p') ||
		die "cannot download k8s.io/kubernetes@$kube_version (is the Go module proxy reachable?)"
	[ -f "$gomod" ] || die "cannot download k8s.io/kubernetes@$kube_version (no go.mod in the module cache)"
	# The subshell's status is checked, so set -e does not apply inside it:
	# every step checks its own.
	(
		cd "$work" || exit 1
		"$GO" mod init poddns.local/kube-apiserver-build >/dev/null 2>&1 || exit 1
		"$GO" mod edit -require "k8s.io/kubernetes@$kube_version" || exit 1
		# Every "k8s.io/x => ./staging/src/k8s.io/x" becomes "k8s.io/x => k8s.io/x v0.X.Y".
		replaces=()
		while read -r m; do
			replaces+=(-replace "$m=$m@$api_version")
		done < <(grep -E '^[[:space:]]*k8s\.io/[^ ]+ => \./staging/' "$gomod" | awk '{print $1}')
		if [ ${#replaces[@]} -eq 0 ]; then
			log "no ./staging replaces in $gomod: the build recipe no longer fits"
			exit 1
		fi
		"$GO" mod edit "${replaces[@]}" || exit 1
		pkg=k8s.io/component-base/version
		minor=${kube_version#v1.}
		minor=${minor%%.*}
		CGO_ENABLED=0 GOFLAGS=-mod=mod "$GO" build -trimpath -o "$tmp" \
			-ldflags "-s -w -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean" \
			k8s.io/kubernetes/cmd/kube-apiserver
	) || die "building kube-apiserver $kube_version failed (see above)"
	runs "$tmp" || die "the kube-apiserver just built does not run: $tmp"
	mv -f "$tmp" "$kube_dir/kube-apiserver" # atomic: same directory
	rm -rf "$work"
	trap - EXIT
	log "built kube-apiserver $kube_version in $(($(date +%s) - start))s into $kube_dir"
}

provide_etcd() {
	local sys
	sys=$(command -v etcd || true)
	if [ -n "$sys" ]; then
		ln -sfn "$sys" "$out/etcd"
		return
	fi
	local etcd_dir="$cache/etcd-$etcd_module_version"
	if ! runs "$etcd_dir/etcd"; then
		lock "$cache/.etcd-$etcd_module_version.lock"
		if ! runs "$etcd_dir/etcd"; then
			log "no etcd on PATH (apt-get install etcd-server, or make deps): building etcd $etcd_module_version from its Go module"
			local tmpbin
			mkdir -p "$etcd_dir"
			tmpbin=$(mktemp -d "$etcd_dir/.build.XXXXXX")
			GOBIN="$tmpbin" CGO_ENABLED=0 GOFLAGS=-mod=mod "$GO" install "go.etcd.io/etcd/server/v3@$etcd_module_version" ||
				{ rm -rf "$tmpbin"; die "building etcd $etcd_module_version failed"; }
			# go install names the binary after the module directory (server).
			local built
			built=$(find "$tmpbin" -maxdepth 1 -type f -perm -u+x | head -1)
			[ -n "$built" ] || { rm -rf "$tmpbin"; die "go install of etcd produced no binary"; }
			mv -f "$built" "$etcd_dir/etcd"
			rm -rf "$tmpbin"
		fi
	fi
	ln -sfn "$etcd_dir/etcd" "$out/etcd"
}

if runs "$kube_dir/kube-apiserver"; then
	log "kube-apiserver $kube_version from cache $kube_dir"
else
	lock "$cache/.kube-apiserver-$kube_version.lock"
	# Another run may have finished the build while this one waited.
	if runs "$kube_dir/kube-apiserver"; then
		log "kube-apiserver $kube_version from cache $kube_dir (built by another run)"
	else
		build_kube_apiserver
	fi
fi
ln -sfn "$kube_dir/kube-apiserver" "$out/kube-apiserver"
provide_etcd
"$out/kube-apiserver" --version >&2 || die "$out/kube-apiserver does not run"
etcd_version=$("$out/etcd" --version 2>&1) || die "$out/etcd does not run: $etcd_version"
printf '%s\n' "${etcd_version%%$'\n'*}" >&2

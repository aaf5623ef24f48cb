#!/usr/bin/env bash
# envtest-assets.sh provides kube-apiserver and etcd for envtest in bin/envtest/.
#
# No prebuilt binary can be downloaded here, so kube-apiserver is built from the
# k8s.io/kubernetes Go module at the version matching k8s.io/api in go.mod
# (hack/lib/kube-build.sh, shared with hack/node-assets.sh). etcd is Debian's etcd-server binary when present, otherwise built from
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

tool=envtest-assets
# shellcheck source=lib/kube-build.sh
. "$(dirname "$0")/lib/kube-build.sh"
etcd_module_version="${ETCD_VERSION:-v3.5.21}"

cache="${PODDNS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/poddns}/envtest"
kube_dir="$cache/kube-apiserver-$kube_version"
out="$root/bin/envtest"
mkdir -p "$out" "$kube_dir"

build_kube_apiserver() {
	local start tmp
	start=$(date +%s)
	tmp="$kube_dir/.kube-apiserver.tmp.$$"
	trap 'rm -rf "$tmp"' EXIT
	log "building kube-apiserver $kube_version from the k8s.io/kubernetes module (several minutes)"
	kube_build "$tmp" kube-apiserver
	runs "$tmp/kube-apiserver" || die "the kube-apiserver just built does not run: $tmp/kube-apiserver"
	mv -f "$tmp/kube-apiserver" "$kube_dir/kube-apiserver" # atomic: same directory
	rm -rf "$tmp"
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

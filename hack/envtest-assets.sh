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
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

api_version=$(go list -m -f '{{.Version}}' k8s.io/api 2>/dev/null || true)
if [ -z "$api_version" ]; then
	api_version=$(awk '$1=="k8s.io/api"{print $2}' go.mod)
fi
# k8s.io/api v0.X.Y goes with k8s.io/kubernetes v1.X.Y.
kube_version="v1.${api_version#v0.}"
etcd_module_version="${ETCD_VERSION:-v3.5.21}"

cache="${PODDNS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/poddns}/envtest"
kube_dir="$cache/kube-apiserver-$kube_version"
out="$root/bin/envtest"
mkdir -p "$out" "$kube_dir"

log() { printf 'envtest-assets: %s\n' "$*" >&2; }

build_kube_apiserver() {
	local work gomod
	work=$(mktemp -d)
	trap 'rm -rf "$work"' RETURN
	log "building kube-apiserver $kube_version from the k8s.io/kubernetes module (several minutes)"
	gomod=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$kube_version" |
		sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
	[ -f "$gomod" ] || { log "cannot download k8s.io/kubernetes@$kube_version"; return 1; }
	(
		cd "$work"
		go mod init poddns.local/kube-apiserver-build >/dev/null 2>&1
		go mod edit -require "k8s.io/kubernetes@$kube_version"
		# Every "k8s.io/x => ./staging/src/k8s.io/x" becomes "k8s.io/x => k8s.io/x v0.X.Y".
		grep -E '^[[:space:]]*k8s\.io/[^ ]+ => \./staging/' "$gomod" | awk '{print $1}' | while read -r m; do
			go mod edit -replace "$m=$m@$api_version"
		done
		local pkg=k8s.io/component-base/version
		local minor=${kube_version#v1.}; minor=${minor%%.*}
		CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$kube_dir/kube-apiserver.tmp" \
			-ldflags "-s -w -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean" \
			k8s.io/kubernetes/cmd/kube-apiserver
	)
	mv "$kube_dir/kube-apiserver.tmp" "$kube_dir/kube-apiserver"
}

provide_etcd() {
	local sys
	sys=$(command -v etcd || true)
	if [ -n "$sys" ]; then
		ln -sf "$sys" "$out/etcd"
		return
	fi
	local etcd_dir="$cache/etcd-$etcd_module_version"
	if [ ! -x "$etcd_dir/etcd" ]; then
		log "no etcd on PATH: building etcd $etcd_module_version from its Go module"
		mkdir -p "$etcd_dir"
		GOBIN="$etcd_dir" CGO_ENABLED=0 go install "go.etcd.io/etcd/server/v3@$etcd_module_version"
		mv "$etcd_dir/server" "$etcd_dir/etcd" 2>/dev/null || true
	fi
	ln -sf "$etcd_dir/etcd" "$out/etcd"
}

if [ -x "$kube_dir/kube-apiserver" ]; then
	log "kube-apiserver $kube_version from cache $kube_dir"
else
	build_kube_apiserver
fi
ln -sf "$kube_dir/kube-apiserver" "$out/kube-apiserver"
provide_etcd
"$out/kube-apiserver" --version >&2
"$out/etcd" --version 2>&1 | head -1 >&2

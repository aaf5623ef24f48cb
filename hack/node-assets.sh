#!/usr/bin/env bash
# node-assets.sh provides the node programs of the one-node cluster rig
# (test/cluster, `make e2e-cluster`) in bin/node/: kubelet,
# kube-controller-manager, kube-scheduler and kube-proxy, built from the
# k8s.io/kubernetes Go module like kube-apiserver (hack/lib/kube-build.sh), in
# one go build so they share their packages' compilation.
#
# They are cached per user, keyed by version, under
# ${PODDNS_CACHE:-~/.cache/poddns}/node/kubernetes-<version>/, so a fresh
# clone on the same machine links them instead of rebuilding; a lock makes
# concurrent runs wait for one build, and the directory is moved into place
# only once every binary runs. containerd, runc and the CNI plugins are
# Debian's (hack/install-deps.sh).
#
# Environment: GO (go command, default go), PODDNS_CACHE (cache root).
set -euo pipefail

tool=node-assets
# shellcheck source=lib/kube-build.sh
. "$(dirname "$0")/lib/kube-build.sh"

cmds=(kubelet kube-controller-manager kube-scheduler kube-proxy)
cache="${PODDNS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/poddns}/node"
dir="$cache/kubernetes-$kube_version"
out="$root/bin/node"
mkdir -p "$cache" "$out"

# complete: every program is in the cache and runs.
complete() {
	for c in "${cmds[@]}"; do runs "$dir/$c" || return 1; done
}

if complete; then
	log "${cmds[*]} $kube_version from cache $dir"
else
	lock "$cache/.kubernetes-$kube_version.lock"
	# Another run may have finished the build while this one waited.
	if complete; then
		log "${cmds[*]} $kube_version from cache $dir (built by another run)"
	else
		start=$(date +%s)
		tmp="$cache/.kubernetes-$kube_version.tmp.$$"
		trap 'rm -rf "$tmp"' EXIT
		log "building ${cmds[*]} $kube_version from the k8s.io/kubernetes module in one go build (minutes)"
		kube_build "$tmp" "${cmds[@]}"
		for c in "${cmds[@]}"; do runs "$tmp/$c" || die "the $c just built does not run: $tmp/$c"; done
		rm -rf "$dir"
		mv "$tmp" "$dir" # atomic: same directory
		trap - EXIT
		log "built ${cmds[*]} $kube_version in $(($(date +%s) - start))s into $dir"
	fi
fi
for c in "${cmds[@]}"; do ln -sfn "$dir/$c" "$out/$c"; done
"$out/kubelet" --version >&2 || die "$out/kubelet does not run"

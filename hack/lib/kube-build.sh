# kube-build.sh: shared by hack/envtest-assets.sh and hack/node-assets.sh
# (sourced, not run). It builds Kubernetes programs from the k8s.io/kubernetes
# Go module at the version matching k8s.io/api in go.mod: a throwaway module
# requires k8s.io/kubernetes and replaces every k8s.io/* staging module that
# its go.mod points at ./staging/... by the same-version published module.
#
# The caller sets tool (its name in messages); this file changes to the
# repository root (root), sets GO (default go), api_version and
# kube_version, and provides log, die, lock, runs and kube_build.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

GO=${GO:-go}
log() { printf '%s: %s\n' "$tool" "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v "$GO" >/dev/null 2>&1 || die "'$GO' not found: install Go (see go.mod for the version)"

# k8s.io/api v0.X.Y goes with k8s.io/kubernetes v1.X.Y.
api_version=$(cd "$root" && "$GO" list -m -f '{{.Version}}' k8s.io/api 2>/dev/null || true)
if [ -z "$api_version" ]; then
	api_version=$(awk '$1=="k8s.io/api"{print $2}' "$root/go.mod")
fi
case "$api_version" in
v0.*.*) ;;
*) die "cannot read the k8s.io/api version from go.mod (got '${api_version}')" ;;
esac
kube_version="v1.${api_version#v0.}"

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

# kube_build OUTDIR CMD...: builds k8s.io/kubernetes/cmd/CMD for each CMD in
# ONE go build (they share most of their packages) into OUTDIR, which must
# not exist yet and is removed on failure.
kube_build() {
	local outdir=$1 work gomod
	shift
	work=$(mktemp -d)
	gomod=$(cd "$work" && GOFLAGS=-mod=mod "$GO" mod download -json "k8s.io/kubernetes@$kube_version" |
		sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p') || true
	if [ ! -f "$gomod" ]; then
		rm -rf "$work"
		die "cannot download k8s.io/kubernetes@$kube_version (is the Go module proxy reachable?)"
	fi
	local pkgs=()
	for c in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
	# The subshell's status is checked, so set -e does not apply inside it:
	# every step checks its own.
	(
		cd "$work" || exit 1
		"$GO" mod init poddns.local/kube-build >/dev/null 2>&1 || exit 1
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
		mkdir -p "$outdir" || exit 1
		CGO_ENABLED=0 GOFLAGS=-mod=mod "$GO" build -trimpath -o "$outdir/" \
			-ldflags "-s -w -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean" \
			"${pkgs[@]}"
	)
	local rc=$?
	rm -rf "$work"
	if [ $rc -ne 0 ]; then
		rm -rf "$outdir"
		die "building $* $kube_version failed (see above)"
	fi
}

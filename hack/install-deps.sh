#!/usr/bin/env bash
# install-deps.sh installs, with apt-get, the Debian packages the tests need on
# a fresh Debian 12 machine: etcd for envtest, real DNS clients (dig, kdig,
# dnsperf), musl-gcc for the musl stub-resolver test, ip and unshare for
# network and mount namespaces, nsenter, nft, iptables (nft and legacy
# backends) and conntrack for the node-local setup tests, make and gcc, and
# the CA bundle `make images` copies into the images (ca-certificates), and
# the one-node cluster rig's container runtime: containerd, runc, the CNI
# plugins (bridge, host-local, loopback) and nft for kube-proxy.
#
# Idempotent: it checks for each program first and exits at once when all are
# present. apt-get update runs only when something is missing. When it cannot
# install (not root, no apt-get) it prints what to run and, under CI=true,
# fails; elsewhere it goes on, and the tests that need the missing programs
# skip with the same advice (internal/testenv).
set -euo pipefail

# program (or an absolute path) -> Debian package that provides it.
deps=(
	etcd:etcd-server
	dig:dnsutils
	kdig:knot-dnsutils
	musl-gcc:musl-tools
	ip:iproute2
	unshare:util-linux
	flock:util-linux
	nsenter:util-linux
	nft:nftables
	conntrack:conntrack
	iptables-legacy:iptables
	dnsperf:dnsperf
	make:make
	gcc:gcc
	update-ca-certificates:ca-certificates
	containerd:containerd
	ctr:containerd
	runc:runc
	/usr/lib/cni/bridge:containernetworking-plugins
	/usr/lib/cni/host-local:containernetworking-plugins
	/usr/lib/cni/loopback:containernetworking-plugins
)

# ip lives in /usr/sbin or /sbin, which a non-root PATH may lack.
search_path="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

missing=()
for d in "${deps[@]}"; do
	prog=${d%%:*} pkg=${d#*:}
	if ! PATH="$search_path" command -v "$prog" >/dev/null 2>&1; then
		case " ${missing[*]-} " in
		*" $pkg "*) ;;
		*) missing+=("$pkg") ;;
		esac
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

echo "install-deps: missing Debian packages: ${missing[*]}" >&2
install=(apt-get install -y --no-install-recommends "${missing[@]}")
# cannot_install explains why nothing is installed; only CI treats that as fatal.
cannot_install() {
	echo "install-deps: $*" >&2
	if [ "${CI:-}" = true ]; then
		exit 1
	fi
	echo "install-deps: going on; tests that need these programs will be skipped" >&2
	exit 0
}
if [ "$(id -u)" -ne 0 ]; then
	cannot_install "not root; run: sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive ${install[*]}"
fi
if ! command -v apt-get >/dev/null 2>&1; then
	cannot_install "apt-get not found; install the equivalent of: ${missing[*]}"
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
"${install[@]}"

# Check again: a package name that does not provide the program is a bug here.
for d in "${deps[@]}"; do
	prog=${d%%:*} pkg=${d#*:}
	if ! PATH="$search_path" command -v "$prog" >/dev/null 2>&1; then
		echo "install-deps: $prog still missing after installing $pkg" >&2
		exit 1
	fi
done
echo "install-deps: installed ${missing[*]}" >&2

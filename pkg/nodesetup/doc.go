// Package nodesetup prepares a node for a node-local DNS server: an
// interface of its own holding the listen addresses (a link-local IP such
// as 169.254.20.10 and, in transparent mode, the cluster DNS Service IP),
// and netfilter rules that take DNS to and from those addresses out of
// connection tracking.
//
// It exists because a node-local dnsd (DESIGN.md, "dnsd's two deployments")
// must answer pods without kube-proxy's DNAT and conntrack in the way: the
// UDP conntrack insert race behind the 5-second timeouts, conntrack table
// pressure, and — in transparent mode — the DNAT of the cluster DNS IP,
// which NOTRACK'd packets never reach because NAT needs a tracked flow.
// NodeLocal DNSCache does the same with a dummy interface and iptables
// rules (kubernetes-dns.md §3); this package does it with netlink and
// nftables directly (vishvananda/netlink, google/nftables), no commands
// shelled out:
//
//   - The interface (default poddns0) is a dummy link where the kernel has
//     that type, else a bridge with no ports (kernels built without
//     CONFIG_DUMMY); the choice is made at run time and logged.
//   - The rules live in an nftables table of their own (inet family, so
//     IPv4 and IPv6 alike): NOTRACK for UDP and TCP port 53 to and from the
//     listen IPs in prerouting and output at raw priority (before
//     conntrack, so before kube-proxy's NAT in both its iptables and
//     nftables modes), and accept rules in input and output. The accept
//     rules cannot override a drop in another table (every base chain on a
//     hook sees the packet); they document the intent and count packets.
//   - Several instances on one node (a DaemonSet rolling with maxSurge)
//     share the setup: each holds a shared flock on a lock file under /run
//     for as long as it runs, and only an instance that can take the lock
//     exclusively when it stops — the last one — tears the setup down. A
//     killed instance leaves everything in place; the next one adopts the
//     interface and replaces the table's contents atomically, so nothing is
//     duplicated.
//   - A periodic check repairs whatever someone removed or changed; each
//     failed step is counted in poddns_nodelocal_setup_errors_total{step}
//     and each repair in poddns_nodelocal_setup_repairs_total{step}.
package nodesetup

// Package nodeprofile builds the node profile — cluster domain, cluster DNS
// addresses, node IPs and the node's resolv.conf — against which poddns
// computes pods' resolv.conf files.
//
// It exists so that the webhook and dnsd read one node-profile configuration
// the same way: what a pod's /etc/resolv.conf holds depends on the kubelet of
// the node it runs on, and the webhook's previews and dnsd's server-side
// search completion are only right if both describe that kubelet identically.
// The package turns three sources into a [resolvconf.NodeConfig]:
//
//   - built-in defaults ([Defaults]): cluster.local, 10.96.0.10 and a typical
//     cloud node's resolv.conf, embedded and presented as /etc/resolv.conf;
//   - a file: either poddns's own versioned profile ([File], kind NodeProfile,
//     decoded strictly) or a kubelet KubeletConfiguration file, read as
//     kubelet reads it ([ReadKubeletConfig]);
//   - flags that mirror kubelet's (--cluster-dns, --cluster-domain,
//     --resolv-conf, --node-ip), bound by [Options.AddFlags].
//
// Later sources win field by field: defaults < file < flags. A kubelet
// configuration file is a whole kubelet's configuration, so the fields it
// leaves out take kubelet's defaults (no cluster DNS, an empty cluster
// domain, /etc/resolv.conf), not poddns's built-in ones.
//
// Where the node's resolv.conf comes from matters: a path the user names
// (--resolv-conf, resolvConf in a file) is read from disk, so a missing or
// unparsable file gives kubelet's error for every pod, as on a real node. Only
// when no path is named is the embedded file used; an explicitly empty path
// (--resolv-conf="", resolvConf: "") is kubelet's no-file mode.
//
// The package does no DNS computation itself; that is [resolvconf]'s job.
package nodeprofile

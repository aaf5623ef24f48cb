// Package static answers static records — CoreDNS's hosts plugin and the
// simple uses of its file and template plugins: A, AAAA and CNAME records
// from hosts-format entries given inline or in a hosts file (such as k3s's
// NodeHosts ConfigMap), and PTR records for their addresses.
//
// dnsd puts it behind the cluster handler and in front of acl, cache and
// forward: cluster names stay the cluster's, static answers are local data
// (answered to every client, never cached, never forwarded).
//
// Each block answers the names of its zones (default: every name that
// reaches it). A name the block knows gets its records; a known name
// without records of the asked type gets NODATA; an unknown name gets
// NXDOMAIN, or is handed on when the block has fallthrough — as CoreDNS's
// hosts does. A CNAME's target is answered from the block when it has it,
// else through the chain (one level: a static CNAME reached while
// resolving another is answered alone). PTR queries are answered for the
// entries' addresses (unless noReverse) and otherwise handed on whatever
// the fallthrough, so that reverse lookups of other addresses still reach
// the upstreams.
//
// A hosts file is read at start and checked every reload interval; it is
// read through its path each time, so kubelet's `..data` symlink swap of a
// ConfigMap mount is seen like any other change. A changed file applies
// only when it is whole by this package's rule — it ends with a newline
// and every line parses — and has at least one entry; otherwise it is
// refused, logged and counted (poddns_static_reloads_refused_total{reason})
// and the last good records keep serving. (A file cut exactly at a line
// boundary cannot be told from a shorter one: write hosts files atomically,
// as kubelet does.) A reload swaps the block's records only: nothing is
// rebuilt and the cache, which never holds static answers, is untouched.
package static

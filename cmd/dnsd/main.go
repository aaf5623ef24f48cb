// Command dnsd is poddns's cluster DNS server: it answers the cluster
// domain (Services, endpoints, pods, reverse lookups) per the Kubernetes DNS
// specification from a record store, over UDP and TCP.
//
//	dnsd --source testdata/cluster.yaml --listen 127.0.0.1:5353
//	dnsd --kubeconfig ~/.kube/config --listen 127.0.0.1:5353
//	dnsd --config /etc/poddns/dnsd.yaml
//
// Configuration comes from a versioned file (apiVersion poddns.io/v1alpha1,
// kind DNSDConfig) and flags, which override the file. SIGHUP reloads the
// file and the objects file, keeping the last good configuration when the
// new one is invalid, and so does a change of either file's content or of
// a tls:// upstream's CA file (checked every reload interval, 2s by default,
// through their paths: a ConfigMap's ..data swap included); SIGTERM or SIGINT starts the lame-duck period (DNS is
// still served, /ready fails) and then stops; a second signal stops at once.
//
// Objects come from a file (--source) or from the API server (--kubeconfig,
// or the pod's service account when neither is given).
//
// Names outside the cluster zones are refused unless upstreams are
// configured (--upstream ADDR, repeatable, or --upstream-resolv-conf FILE,
// or forward: in the config file): then they are forwarded, with a cache,
// for clients in the configured client networks only.
//
// `dnsd migrate --corefile FILE [--kube-dns-configmap FILE] [--custom
// DIR|FILE] [--node-profile FILE]` prints a DNSDConfig translated from
// CoreDNS's configuration instead (package migrate; exit 0 when everything
// was translated, 1 when something was left out, 2 for unreadable input).
//
// Exit status: 0 after a clean shutdown, 1 when serving failed, 2 for a
// bad command line or configuration.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "migrate" {
		os.Exit(runMigrate(os.Args[2:], os.Stdout, os.Stderr))
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	os.Exit(run(context.Background(), os.Args[1:], os.Stderr, sigs))
}

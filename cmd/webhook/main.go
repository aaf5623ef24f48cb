// Command webhook is poddns's pod DNS policy webhook:
//
//	webhook serve --config /etc/poddns/webhook.yaml       # the admission webhook (TLS, probes, metrics)
//	webhook profile > node-pools.yaml                      # a NodeProfileSet from the cluster's nodes
//
// and its offline subcommands, which need no cluster:
//
//	webhook render -f testdata/pods/examples.yaml          # resolv.conf per pod
//	webhook render -p testdata/policies -f testdata/pods/  # through the DNS policies
//	webhook explain -p testdata/policies -f testdata/pods/ --pod default/web
//	webhook test testdata/policies/suite                   # a policy test suite, for CI
//	webhook impact --log queries.log -f pods/ -p now/ -p proposed/  # a policy change replayed on dnsd's query log
//
// Exit status: 0 when every pod would run with a resolv.conf (test: every
// expectation holds), 1 when some pod would be rejected by the API server or
// fail in kubelet (test: some expectation does not hold), 2 when the command
// itself fails (bad flags, unreadable or malformed input or policies).
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

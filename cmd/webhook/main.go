// Command webhook is poddns's pod DNS policy webhook. This version has one
// subcommand, render, which shows offline the /etc/resolv.conf that pods in
// manifest files get on a node of a given profile:
//
//	webhook render -f testdata/pods/examples.yaml
//	webhook render -f pods/ -o json --cluster-dns 10.96.0.10 --resolv-conf /etc/resolv.conf
//
// Exit status: 0 when every pod would run with a resolv.conf, 1 when some pod
// would be rejected by the API server or fail in kubelet, 2 when the command
// itself fails (bad flags, unreadable or malformed input).
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

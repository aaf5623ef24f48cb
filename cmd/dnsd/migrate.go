package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/poddns/poddns/pkg/migrate"
)

// Exit statuses of dnsd migrate.
const (
	migrateComplete   = 0 // everything translated
	migratePartial    = 1 // something left out (listed on stderr); the config is still printed
	migrateUnreadable = 2 // an input could not be read or parsed, or a bad command line
)

// runMigrate is `dnsd migrate`: it translates a Corefile (with a kube-dns
// ConfigMap, the coredns-custom extension and a node profile) into a
// DNSDConfig on stdout, and lists on stderr every directive not translated
// with the reason, and what behaves differently. It returns the exit status.
func runMigrate(args []string, stdout, stderr io.Writer) int {
	var in migrate.Input
	fs := pflag.NewFlagSet("dnsd migrate", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&in.Corefile, "corefile", "", "CoreDNS's Corefile (required)")
	fs.StringVar(&in.KubeDNSConfigMap, "kube-dns-configmap", "", "a kube-dns ConfigMap file: its stubDomains and upstreamNameservers are translated too")
	fs.StringVar(&in.Custom, "custom", "", "the coredns-custom extension, a ConfigMap file or a directory of its keys: read by the Corefile's imports of custom/*")
	fs.StringVar(&in.NodeProfile, "node-profile", "", "node profile file (kind NodeProfile): translates autopath into search completion")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: dnsd migrate --corefile FILE [--kube-dns-configmap FILE] [--custom DIR|FILE] [--node-profile FILE]\n\n"+
			"Prints a DNSDConfig translated from CoreDNS's configuration on stdout; on stderr, every directive not\n"+
			"translated with the reason. Exit status: 0 all translated, 1 something left out, 2 unreadable input.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "dnsd migrate: %v\n", err)
		return migrateUnreadable
	}
	if fs.NArg() > 0 || in.Corefile == "" {
		fmt.Fprintln(stderr, "dnsd migrate: want --corefile FILE and no other argument")
		return migrateUnreadable
	}
	res, err := migrate.Translate(in)
	if err != nil {
		fmt.Fprintf(stderr, "dnsd migrate: %v\n", err)
		return migrateUnreadable
	}
	if _, err := stdout.Write(res.YAML); err != nil {
		fmt.Fprintf(stderr, "dnsd migrate: %v\n", err)
		return migrateUnreadable
	}
	fmt.Fprint(stderr, res.Report())
	if !res.Complete() {
		fmt.Fprintf(stderr, "dnsd migrate: %d directive(s) not translated\n", len(res.Skipped))
		return migratePartial
	}
	return migrateComplete
}

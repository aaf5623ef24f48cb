package policytest

import (
	"strings"
	"testing"

	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// StandardNode is a typical cloud node: cluster DNS 10.96.0.10, and a node
// resolv.conf with one nameserver, one search domain and one option.
var StandardNode = resolvconf.NodeConfig{
	ClusterDomain:  "cluster.local",
	ClusterDNS:     []string{"10.96.0.10"},
	ResolvConf:     "/etc/resolv.conf",
	ResolvConfData: []byte("nameserver 10.0.0.2\nsearch ec2.internal\noptions edns0\n"),
}

// Profile returns the node profile of c; an invalid c fails the test.
func Profile(tb testing.TB, c resolvconf.NodeConfig) *resolvconf.NodeProfile {
	tb.Helper()
	p, err := resolvconf.NewNodeProfile(c)
	if err != nil {
		tb.Fatalf("NewNodeProfile: %v", err)
	}
	return p
}

// Parse parses policies, one YAML stream of DNSPolicy documents; an
// invalid stream fails the test.
func Parse(tb testing.TB, policies string) *policy.Set {
	tb.Helper()
	set, err := policy.Parse(strings.NewReader(policies), "policies.yaml")
	if err != nil {
		tb.Fatalf("Parse: %v", err)
	}
	return set
}

// Engine returns an engine over set with opts; an error fails the test.
func Engine(tb testing.TB, set *policy.Set, opts policy.EngineOptions) *policy.Engine {
	tb.Helper()
	e, err := policy.NewEngine(set, opts)
	if err != nil {
		tb.Fatalf("NewEngine: %v", err)
	}
	return e
}

// StandardEngine returns an engine over policies (one YAML stream) on
// StandardNode, in the policies' own modes.
func StandardEngine(tb testing.TB, policies string) *policy.Engine {
	tb.Helper()
	return Engine(tb, Parse(tb, policies), policy.EngineOptions{Profile: Profile(tb, StandardNode)})
}

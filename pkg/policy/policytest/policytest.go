// Package policytest generates DNSPolicy sets for benchmarks and load tests,
// so that the engine's benchmark and the webhook's HTTPS load test measure the
// very same policies, and builds the engines the tests of the policy's users
// run (one standard node, a parse or profile error failing the test).
//
// This package is test support: only _test.go files may import it.
package policytest

import (
	"fmt"
	"strings"
)

// Generated returns n policies of every kind, one YAML stream. They select
// namespaces by a label team=t0 ... team=t9 and pods labelled app=web or
// app=api, so a pod labelled app=web in a namespace labelled team=t3 matches
// one policy in ten; every fifth group of ten is in audit mode.
func Generated(n int) string {
	var b strings.Builder
	for i := range n {
		sel := fmt.Sprintf("  priority: %d\n  match: {namespaceSelector: {matchLabels: {team: t%d}}, podSelector: {matchExpressions: [{key: app, operator: In, values: [web, api]}]}}\n", i%7, i%10)
		var actions string
		switch (i / 10) % 5 {
		case 0:
			actions = fmt.Sprintf("  actions: {ndots: %d}", i%6)
		case 1:
			actions = fmt.Sprintf("  actions: {searches: {add: [$(NAMESPACE).p%d.example]}}", i)
		case 2:
			actions = fmt.Sprintf("  actions: {options: {set: [{name: timeout, value: '%d'}, {name: single-request-reopen}]}}", i%4+1)
		case 3:
			actions = "  actions: {hostNetworkClusterDNS: true}"
		case 4:
			actions = fmt.Sprintf("  mode: audit\n  actions: {nameservers: [169.254.20.%d]}", i%250+1)
		}
		fmt.Fprintf(&b, "---\napiVersion: poddns.io/v1alpha1\nkind: DNSPolicy\nmetadata: {name: policy-%03d}\nspec:\n%s%s\n", i, sel, actions)
	}
	return b.String()
}

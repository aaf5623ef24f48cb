package policy_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/poddns/poddns/pkg/resolvconf"
)

// TestIdempotenceCombinations evaluates every pair of a varied set of
// policies (each with and without override) against varied pods, then
// evaluates the mutated pod again: nothing more may change, and the result
// must pass API validation whenever the submitted pod did.
func TestIdempotenceCombinations(t *testing.T) {
	actions := []string{
		"{hostNetworkClusterDNS: true}",
		"{dnsPolicy: Default}",
		"{dnsPolicy: ClusterFirstWithHostNet}",
		"{dnsPolicy: None, nameservers: [169.254.20.10]}",
		"{nameservers: [169.254.20.10, 10.96.0.10]}",
		"{searches: {add: [$(NAMESPACE).corp.example, ec2.internal]}}",
		"{searches: {replace: [$(NAMESPACE).svc.$(CLUSTER_DOMAIN)]}}",
		"{ndots: 2}",
		"{ndots: 5}",
		"{options: {set: [{name: edns0}, {name: timeout, value: '1'}]}}",
		"{options: {remove: [edns0, ndots]}}",
		"{options: {remove: [timeout]}}",
	}
	pods := []string{
		plainPod,
		"spec: {hostNetwork: true, containers: [{name: c}]}",
		"spec: {dnsPolicy: Default, containers: [{name: c}]}",
		"spec: {dnsPolicy: ClusterFirstWithHostNet, hostNetwork: true, containers: [{name: c}]}",
		"spec: {dnsPolicy: None, dnsConfig: {nameservers: [1.1.1.1], searches: [a.example], options: [{name: ndots, value: '1'}]}, containers: [{name: c}]}",
		"spec: {dnsConfig: {searches: [a.example], options: [{name: timeout, value: '3'}, {name: edns0}]}, containers: [{name: c}]}",
		"spec: {dnsConfig: {nameservers: [10.0.0.3]}, containers: [{name: c}]}",
		"spec: {dnsConfig: {searches: [" + searchList(28) + "]}, containers: [{name: c}]}",
	}
	var policies []string
	for i, a := range actions {
		policies = append(policies, doc(fmt.Sprintf("p%02d", i), "  actions: "+a))
		policies = append(policies, doc(fmt.Sprintf("p%02d-override", i), "  override: true\n  actions: "+a))
	}
	n := 0
	for i := range policies {
		for j := i + 1; j < len(policies); j++ {
			e := newEngine(t, policies[i]+policies[j], "")
			for _, y := range pods {
				p := pod(t, y)
				resolvconf.Default(p)
				errsBefore, _ := resolvconf.Validate(p)
				d := e.Evaluate(p, nil)
				mutated := p.DeepCopy()
				d.Mutate(mutated)
				if errs, _ := resolvconf.Validate(mutated); len(errs) > 0 && len(errsBefore) == 0 {
					t.Errorf("%s + %s on %s: invalid result: %v", policies[i], policies[j], y, errs)
				}
				again := e.Evaluate(mutated, nil)
				if again.Changed {
					t.Errorf("Not idempotent: %s + %s on %s:\n first %s %s\n then  %s %s",
						policies[i], policies[j], y, d.DNSPolicy, fmtDC(d.DNSConfig), again.DNSPolicy, fmtDC(again.DNSConfig))
				}
				n++
			}
		}
	}
	t.Logf("%d evaluations", n)
}

func fmtDC(dc *corev1.PodDNSConfig) string {
	if dc == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%v %v %v", dc.Nameservers, dc.Searches, optionsText(dc.Options))
}

func optionsText(opts []corev1.PodDNSConfigOption) []string {
	var out []string
	for _, o := range opts {
		if o.Value != nil {
			out = append(out, o.Name+":"+*o.Value)
		} else {
			out = append(out, o.Name)
		}
	}
	return out
}

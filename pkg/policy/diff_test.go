package policy_test

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/poddns/poddns/pkg/policy"
)

func TestDiffDNS(t *testing.T) {
	two, three := "2", "3"
	tests := []struct {
		name       string
		fromP, toP corev1.DNSPolicy
		from, to   *corev1.PodDNSConfig
		want       []policy.Change
	}{
		{name: "equal, empty policy is ClusterFirst", fromP: "", toP: corev1.DNSClusterFirst},
		{name: "nil and empty dnsConfig are equal", from: nil, to: &corev1.PodDNSConfig{}},
		{name: "option value", from: &corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &two}}},
			to:   &corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &three}}},
			want: []policy.Change{{Field: "spec.dnsConfig.options[ndots]", From: "ndots:2", To: "ndots:3"}}},
		{name: "option added and removed", from: &corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{Name: "edns0"}}},
			to:   &corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{Name: "rotate"}}},
			want: []policy.Change{{Field: "spec.dnsConfig.options[edns0]", From: "edns0"}, {Field: "spec.dnsConfig.options[rotate]", To: "rotate"}}},
		{name: "switch to None", fromP: corev1.DNSClusterFirst, toP: corev1.DNSNone,
			to: &corev1.PodDNSConfig{Nameservers: []string{"169.254.20.10"}, Searches: []string{"a.example", "b.example"}},
			want: []policy.Change{
				{Field: "spec.dnsPolicy", From: "ClusterFirst", To: "None"},
				{Field: "spec.dnsConfig.nameservers", To: "[169.254.20.10]"},
				{Field: "spec.dnsConfig.searches", To: "[a.example b.example]"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := policy.DiffDNS(tt.fromP, tt.from, tt.toP, tt.to)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DiffDNS = %+v, want %+v", got, tt.want)
			}
		})
	}
}

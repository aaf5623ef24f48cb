package scan_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	fakediscovery "k8s.io/client-go/discovery/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/poddns/poddns/pkg/report"
	"github.com/poddns/poddns/pkg/report/scan"
)

// TestDetect: openreports.io is preferred to wgpolicyk8s.io, only a
// namespaced report resource counts, and a cluster with neither has none.
// (TestReportScan detects wgpolicyk8s.io on a real API server.)
func TestDetect(t *testing.T) {
	openreports := &metav1.APIResourceList{GroupVersion: "openreports.io/v1alpha1", APIResources: []metav1.APIResource{
		{Name: "clusterreports", Kind: "ClusterReport"}, {Name: "reports", Kind: "Report", Namespaced: true}}}
	wg := &metav1.APIResourceList{GroupVersion: "wgpolicyk8s.io/v1alpha2", APIResources: []metav1.APIResource{
		{Name: "policyreports", Kind: "PolicyReport", Namespaced: true}}}
	clusterOnly := &metav1.APIResourceList{GroupVersion: "openreports.io/v1alpha1", APIResources: []metav1.APIResource{
		{Name: "clusterreports", Kind: "ClusterReport"}}}
	for _, tc := range []struct {
		name  string
		lists []*metav1.APIResourceList
		want  string
	}{
		{"both", []*metav1.APIResourceList{wg, openreports}, "openreports.io/v1alpha1"},
		{"wgpolicyk8s.io only", []*metav1.APIResourceList{wg}, "wgpolicyk8s.io/v1alpha2"},
		{"only the cluster-scoped openreports kind", []*metav1.APIResourceList{clusterOnly, wg}, "wgpolicyk8s.io/v1alpha2"},
		{"neither", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{Resources: tc.lists}}
			f, err := scan.Detect(d)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if f != nil {
				got = f.APIVersion()
				if (*f == report.OpenReports) != (got == "openreports.io/v1alpha1") {
					t.Errorf("format %+v", *f)
				}
			}
			if got != tc.want {
				t.Errorf("Detect = %q, want %q", got, tc.want)
			}
		})
	}
}

package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// bulkToken is the bearer token of the admin user Bulk adds (a test's own
// control plane on loopback; not a secret).
const bulkToken = "poddns-bulk-writer"

// bulkAdmissionOff are the admission plugins Bulk turns off besides
// ServiceAccount (off in envtest already: no controller makes the default
// service account): each one reads or mutates every Pod created (quota,
// limit ranges, pod security, priority, default tolerations) and none
// changes what DNS answers.
var bulkAdmissionOff = []string{"ServiceAccount", "PodSecurity", "DefaultTolerationSeconds", "Priority", "LimitRanger",
	"ResourceQuota", "RuntimeClass", "PodTopologyLabels", "DefaultStorageClass", "StorageObjectInUseProtection"}

// bulkEtcdQuotaBytes is etcd's --quota-backend-bytes under Bulk: etcd
// 3.4's default, 2 GiB, holds the objects of Kubernetes' published limits
// (150k Pods, each written twice) only until the revisions pile up between
// two compactions; 8 GiB is etcd's largest recommended quota.
const bulkEtcdQuotaBytes = 8 << 30

// Bulk is an Option for tests and benchmarks that fill the API server
// with many objects (tens of thousands of Pods): the API server spends its
// CPU on the writes, not on what a test does not exercise. It
//   - accepts a static bearer token for an admin user (BulkClient): the
//     client certificate of envtest's admin user is verified (ECDSA) on
//     every request, ~10% of the API server's CPU during a fill;
//   - turns API Priority and Fairness off (the plain max-in-flight limit
//     instead) and the admission plugins of bulkAdmissionOff;
//   - raises etcd's quota (bulkEtcdQuotaBytes).
//
// What dnsd and CoreDNS list and watch is the same: objects, defaulting,
// validation, watch cache. A test that sets the API server's or etcd's
// flags after Bulk overrides it.
func Bulk(t testing.TB) Option {
	t.Helper()
	dir := t.TempDir() // lives until the test ends: a restarted API server reads it again
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(bulkToken+`,poddns-bulk,poddns-bulk,"system:masters"`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(e *envtest.Environment) {
		as := e.ControlPlane.GetAPIServer().Configure()
		as.Set("token-auth-file", tokens)
		as.Set("enable-priority-and-fairness", "false")
		as.Set("disable-admission-plugins", strings.Join(bulkAdmissionOff, ","))
		if e.ControlPlane.Etcd == nil {
			e.ControlPlane.Etcd = &envtest.Etcd{}
		}
		e.ControlPlane.Etcd.Configure().Set("quota-backend-bytes", strconv.Itoa(bulkEtcdQuotaBytes))
	}
}

// BulkClient is a clientset for a control plane started with Bulk: it
// authenticates with Bulk's token (not the client certificate), speaks
// protobuf, and has no client-side throttling.
func BulkClient(t testing.TB, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	c := rest.CopyConfig(cfg)
	c.CertData, c.KeyData, c.CertFile, c.KeyFile = nil, nil, "", ""
	c.BearerToken = bulkToken
	c.QPS, c.Burst = 1e6, 1e6
	c.ContentType = "application/vnd.kubernetes.protobuf"
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

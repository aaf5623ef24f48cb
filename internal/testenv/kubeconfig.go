package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// AdminKubeconfig writes the kubeconfig file of a new user of the API
// server named user, in group system:masters (an admin), and returns its
// path: for the programs a test runs against the API server (--kubeconfig).
func (e *Env) AdminKubeconfig(t testing.TB, user string) string {
	t.Helper()
	u, err := e.Environment.ControlPlane.AddUser(envtest.User{Name: user, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), user+".kubeconfig")
	if err := os.WriteFile(p, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

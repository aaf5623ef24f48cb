package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/nodeprofile"
)

// TestWebhookProfile: `webhook profile --kubeconfig` builds the node pools'
// selectors from the Node objects of a real API server and their kubelet
// settings from the nodes' annotations; the set it writes, put in place of
// testdata/pools/profiles.yaml, passes the node-pool suite (issue 16, item
// 2). A pool whose nodes carry no annotation is said on stderr.
func TestWebhookProfile(t *testing.T) {
	root := testenv.Root(t)
	env := testenv.Start(t)
	bin := rbacBuild(t, "webhook")
	kubeconfig := env.AdminKubeconfig(t, "profile")

	want, err := nodeprofile.ReadSetFile(filepath.Join(root, "testdata", "pools", "profiles.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	wantCfgs := want.NodeConfigs(nil)
	ctx := context.Background()
	create := func(name string, labels, annotations map[string]string) {
		t.Helper()
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations}}
		if err := env.Client.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	// Two nodes of general, one of legacy, annotated as their kubelets run.
	for i, name := range []string{"general-1", "general-2", "legacy-1"} {
		p := 0
		if i == 2 {
			p = 1
		}
		cfg := wantCfgs[p]
		create(name,
			map[string]string{"poddns.io/pool": want.Profiles[p].Name, "kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": "m5.large"},
			map[string]string{
				nodeprofile.AnnotationClusterDNS:     strings.Join(cfg.ClusterDNS, ","),
				nodeprofile.AnnotationClusterDomain:  cfg.ClusterDomain,
				nodeprofile.AnnotationNodeResolvConf: string(cfg.ResolvConfData),
			})
	}

	run := func(args ...string) (stdout, stderr string) {
		t.Helper()
		var out, errOut bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("webhook %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out.String(), errOut.String())
		}
		return out.String(), errOut.String()
	}
	out, notes := run("profile", "--kubeconfig", kubeconfig)
	if notes != "" {
		t.Errorf("notes for fully annotated nodes:\n%s", notes)
	}
	got, err := nodeprofile.ParseSet([]byte(out), "profile output")
	if err != nil {
		t.Fatalf("the output is not a NodeProfileSet: %v\n%s", err, out)
	}
	if len(got.Profiles) != 2 {
		t.Fatalf("%d profiles, want general and legacy:\n%s", len(got.Profiles), out)
	}
	gotCfgs := got.NodeConfigs(nil)
	for i := range want.Profiles {
		if g, w := got.Profiles[i], want.Profiles[i]; g.Name != w.Name || !reflect.DeepEqual(g.NodeSelector, w.NodeSelector) {
			t.Errorf("profile %d: %s %v, want %s %v", i, g.Name, g.NodeSelector, w.Name, w.NodeSelector)
		}
		if !reflect.DeepEqual(gotCfgs[i], wantCfgs[i]) {
			t.Errorf("profile %s: settings\n%+v\nwant\n%+v", got.Profiles[i].Name, gotCfgs[i], wantCfgs[i])
		}
	}

	// The node-pool suite with the generated set as its profile.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "generated.yaml"), []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	suite, err := os.ReadFile(filepath.Join(root, "testdata", "pools", nodeprofileSuite))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(
		"policies: [policies.yaml]", "policies: ["+filepath.Join(root, "testdata", "pools", "policies.yaml")+"]",
		"resources: [pods.yaml]", "resources: ["+filepath.Join(root, "testdata", "pools", "pods.yaml")+"]",
		"profile: profiles.yaml", "profile: generated.yaml",
	).Replace(string(suite))
	if !strings.Contains(s, "profile: generated.yaml") {
		t.Fatal("the suite names no profiles.yaml to replace")
	}
	if err := os.WriteFile(filepath.Join(dir, nodeprofileSuite), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	if res, _ := run("test", dir); !strings.Contains(res, "4 passed, 0 failed") {
		t.Errorf("the suite on the generated set:\n%s", res)
	}

	// A node without a pool label or annotations: a pool by instance type
	// and OS after the labelled ones, and stderr says what is unknown.
	create("spot-1", map[string]string{"kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": "c6i.large"}, nil)
	out, notes = run("profile", "--kubeconfig", kubeconfig)
	got, err = nodeprofile.ParseSet([]byte(out), "profile output")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Profiles); n != 3 || got.Profiles[2].Name != "c6i.large-linux" {
		t.Errorf("profiles: %d, want general, legacy, c6i.large-linux:\n%s", n, out)
	}
	for _, w := range []string{
		`note: pool "c6i.large-linux": cluster DNS unknown: set clusterDNS in the settings file or annotate its nodes with poddns.io/cluster-dns`,
		`note: pool "c6i.large-linux": cluster domain unknown`,
		`note: pool "c6i.large-linux": the node's resolv.conf (host search domains, options) unknown`,
	} {
		if !strings.Contains(notes, w) {
			t.Errorf("stderr lacks %q:\n%s", w, notes)
		}
	}
}

// nodeprofileSuite is the suite file's name (policysuite.FileName).
const nodeprofileSuite = "poddns-test.yaml"

package admission_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poddns/poddns/pkg/policy"
	padmission "github.com/poddns/poddns/pkg/policy/admission"
	"github.com/poddns/poddns/pkg/policy/policytest"
)

// swapVolume updates dir as kubelet updates a ConfigMap volume: files in a
// new timestamped directory, ..data_tmp renamed over ..data, the visible
// names linked into ..data, the old directory removed.
func swapVolume(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	ts := filepath.Join(dir, fmt.Sprintf("..%d", time.Now().UnixNano()))
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(ts, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
			if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if old != "" {
		_ = os.RemoveAll(filepath.Join(dir, old))
	}
}

const reloadPolicy = "apiVersion: poddns.io/v1alpha1\nkind: DNSPolicy\nmetadata: {name: %s}\nspec: {actions: {ndots: %d}}\n"

func TestReloaderFollowsConfigMapSwaps(t *testing.T) {
	dir := t.TempDir()
	swapVolume(t, dir, map[string]string{"p.yaml": fmt.Sprintf(reloadPolicy, "first", 2)})
	set, err := policy.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := policytest.Engine(t, set, policy.EngineOptions{Profile: policytest.Profile(t, policytest.StandardNode)})
	m, err := padmission.NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan error, 16)
	r := &padmission.Reloader{Engine: e, Paths: []string{dir}, Metrics: m, Log: logr.Discard(), Delay: 200 * time.Millisecond,
		OnReload: func(err error) { results <- err }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	}()
	wait := func() error {
		t.Helper()
		select {
		case err := <-results:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("no reload")
			return nil
		}
	}
	if err := wait(); err != nil { // the reload at start
		t.Fatalf("first reload: %v", err)
	}
	names := func() string {
		var out []string
		for _, p := range e.Set().Policies() {
			out = append(out, p.Name)
		}
		return strings.Join(out, ",")
	}

	swapVolume(t, dir, map[string]string{"p.yaml": fmt.Sprintf(reloadPolicy, "second", 3)})
	if err := wait(); err != nil {
		t.Fatalf("reload after the swap: %v", err)
	}
	if got := names(); got != "second" {
		t.Errorf("policies after the swap = %s, want second", got)
	}

	swapVolume(t, dir, map[string]string{"p.yaml": fmt.Sprintf(reloadPolicy, "third", 99)})
	err = wait()
	if err == nil || !strings.Contains(err.Error(), "spec.actions.ndots") || !strings.Contains(err.Error(), "keeping the 1 policies in use") {
		t.Errorf("bad reload error = %v", err)
	}
	if got := names(); got != "second" {
		t.Errorf("policies after a bad reload = %s, want second (the last good set)", got)
	}
	if n := testutil.ToFloat64(m.ReloadFailures); n != 1 {
		t.Errorf("reload failures = %v, want 1", n)
	}
	if n := testutil.ToFloat64(m.Reloads); n != 3 {
		t.Errorf("reloads = %v, want 3", n)
	}
}

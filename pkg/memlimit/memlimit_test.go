package memlimit_test

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/poddns/poddns/pkg/memlimit"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

// TestFind reads the limit from the downward API's variable first, then
// from cgroup files (fixtures of both versions, as the kernel writes them).
func TestFind(t *testing.T) {
	for _, tc := range []struct {
		name, root string
		env        map[string]string
		want       int64
		wantSrc    string // suffix
		wantErr    string
	}{
		{name: "downward API variable wins over the cgroup", root: "testdata/v1", env: map[string]string{"CONTAINER_MEMORY_LIMIT": "104857600"},
			want: 104857600, wantSrc: "CONTAINER_MEMORY_LIMIT"},
		{name: "cgroups v1", root: "testdata/v1", want: 256 << 20, wantSrc: "memory/memory.limit_in_bytes"},
		{name: "cgroups v1 without a limit", root: "testdata/v1-unlimited"},
		{name: "cgroups v2", root: "testdata/v2", want: 512 << 20, wantSrc: "memory.max"},
		{name: "cgroups v2 without a limit", root: "testdata/v2-max"},
		{name: "no cgroup files", root: "testdata/none"},
		{name: "garbage in the cgroup file", root: "testdata/bad", wantErr: `"lots" is not a limit`},
		{name: "garbage in the variable", root: "testdata/v1", env: map[string]string{"CONTAINER_MEMORY_LIMIT": "512Mi"}, wantErr: "not a positive number of bytes"},
		{name: "zero in the variable", root: "testdata/v1", env: map[string]string{"CONTAINER_MEMORY_LIMIT": "0"}, wantErr: "not a positive number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, src, err := memlimit.Find(memlimit.Options{CgroupRoot: tc.root, Getenv: env(tc.env)})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || n != tc.want || !strings.HasSuffix(src, tc.wantSrc) {
				t.Errorf("Find = %d, %q, %v; want %d from ...%s", n, src, err, tc.want, tc.wantSrc)
			}
		})
	}
}

// TestSet sets the runtime's soft limit to the fraction of the limit, and
// leaves an explicit GOMEMLIMIT alone.
func TestSet(t *testing.T) {
	orig := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(orig) })

	r, err := memlimit.Set(memlimit.Options{CgroupRoot: "testdata/v2", Getenv: env(nil)})
	if err != nil || r.Limit != 512<<20 || r.SoftLimit != 429496729 || debug.SetMemoryLimit(-1) != r.SoftLimit {
		t.Errorf("Set = %+v, %v; runtime limit %d", r, err, debug.SetMemoryLimit(-1))
	}
	r, err = memlimit.Set(memlimit.Options{CgroupRoot: "testdata/v1", Fraction: 0.5, Getenv: env(nil)})
	if err != nil || r.SoftLimit != 128<<20 || debug.SetMemoryLimit(-1) != 128<<20 {
		t.Errorf("Set with fraction 0.5 = %+v, %v", r, err)
	}
	debug.SetMemoryLimit(orig)
	r, err = memlimit.Set(memlimit.Options{CgroupRoot: "testdata/v2", Getenv: env(map[string]string{"GOMEMLIMIT": "300MiB"})})
	if err != nil || r.Source != "GOMEMLIMIT" || debug.SetMemoryLimit(-1) != orig {
		t.Errorf("Set with GOMEMLIMIT = %+v, %v: changed the runtime's limit", r, err)
	}
	r, err = memlimit.Set(memlimit.Options{CgroupRoot: "testdata/v1-unlimited", Getenv: env(nil)})
	if err != nil || r.SoftLimit != 0 || debug.SetMemoryLimit(-1) != orig {
		t.Errorf("Set without a limit = %+v, %v: changed the runtime's limit", r, err)
	}
	if _, err := memlimit.Set(memlimit.Options{CgroupRoot: "testdata/v2", Fraction: 1.5, Getenv: env(nil)}); err == nil {
		t.Error("Set accepted a fraction of 1.5")
	}
}

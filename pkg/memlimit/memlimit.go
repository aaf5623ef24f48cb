// Package memlimit sizes the Go heap to the container: it sets the
// runtime's soft memory limit (GOMEMLIMIT) to a fraction of the container's
// memory limit, so that the garbage collector works harder as the process
// nears the limit instead of letting the kernel OOM-kill it (a relist after
// an API-server restart, a burst of queries).
//
// The limit is read, in order, from
//  1. GOMEMLIMIT: set explicitly, it wins and nothing is changed (the Go
//     runtime applied it at start);
//  2. an environment variable holding the limit in bytes, as the downward
//     API writes it (deploy/: CONTAINER_MEMORY_LIMIT from resourceFieldRef
//     limits.memory; without a limit on the container it holds the node's
//     allocatable memory, still a sane bound);
//  3. the cgroup's own limit: cgroups v2 memory.max, or cgroups v1
//     memory/memory.limit_in_bytes (v1's "no limit" is a huge page-aligned
//     number, treated as none).
//
// Fraction (DefaultFraction, 0.8) leaves room for what the runtime does not
// count against GOMEMLIMIT and the kernel charges to the container: the
// binary's mapped code, socket buffers, the page cache of files read.
//
// It exists so that dnsd (and any other program here) gets the same rule,
// tested against fixture cgroup files (the machines here have cgroups v1
// only), rather than each main reading cgroups its own way.
package memlimit

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// DefaultEnv is the environment variable deploy/ fills from the downward
// API with the container's memory limit in bytes.
const DefaultEnv = "CONTAINER_MEMORY_LIMIT"

// DefaultFraction of the container's limit becomes the soft limit.
const DefaultFraction = 0.8

// Options say where the limit comes from. The zero value reads DefaultEnv,
// then /sys/fs/cgroup, with DefaultFraction.
type Options struct {
	// Env is the variable holding the limit in bytes ("" for DefaultEnv).
	Env string
	// CgroupRoot is where the cgroup filesystem is mounted ("" for
	// /sys/fs/cgroup; tests point it at fixture files).
	CgroupRoot string
	// Fraction of the limit to use, in (0, 1]; 0 for DefaultFraction.
	Fraction float64
	// Getenv reads the environment (nil: os.Getenv).
	Getenv func(string) string
}

// Result is what Set decided.
type Result struct {
	// Limit is the container's memory limit in bytes (0: none found).
	Limit int64
	// Source says where Limit (or the soft limit) came from: "GOMEMLIMIT",
	// the variable's name, a cgroup file, or "" when none.
	Source string
	// SoftLimit is the soft memory limit set, in bytes (0: unchanged).
	SoftLimit int64
}

// cgroupV1NoLimit: cgroups v1 reports "no limit" as the largest
// page-aligned int64 (9223372036854771712); anything this large is none.
const cgroupV1NoLimit = int64(1) << 62

// Find returns the container's memory limit and where it came from
// (0, "" when there is none); it does not change anything.
func Find(o Options) (int64, string, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	env := o.Env
	if env == "" {
		env = DefaultEnv
	}
	if v := strings.TrimSpace(getenv(env)); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return 0, "", fmt.Errorf("memlimit: %s=%q is not a positive number of bytes", env, v)
		}
		return n, env, nil
	}
	root := o.CgroupRoot
	if root == "" {
		root = "/sys/fs/cgroup"
	}
	for _, f := range []string{"memory.max", filepath.Join("memory", "memory.limit_in_bytes")} {
		p := filepath.Join(root, f)
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, "", fmt.Errorf("memlimit: %w", err)
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, "", nil // v2 without a limit
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return 0, "", fmt.Errorf("memlimit: %s: %q is not a limit in bytes", p, v)
		}
		if n >= cgroupV1NoLimit {
			return 0, "", nil
		}
		return n, p, nil
	}
	return 0, "", nil
}

// Set sets the runtime's soft memory limit to Fraction of the container's
// limit, unless GOMEMLIMIT is set or no limit is found.
func Set(o Options) (Result, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if getenv("GOMEMLIMIT") != "" {
		return Result{Source: "GOMEMLIMIT", SoftLimit: debug.SetMemoryLimit(-1)}, nil
	}
	frac := o.Fraction
	if frac == 0 {
		frac = DefaultFraction
	}
	if frac < 0 || frac > 1 || math.IsNaN(frac) {
		return Result{}, fmt.Errorf("memlimit: fraction %v is not in (0, 1]", frac)
	}
	n, src, err := Find(o)
	if err != nil || n == 0 {
		return Result{}, err
	}
	soft := int64(float64(n) * frac)
	debug.SetMemoryLimit(soft)
	return Result{Limit: n, Source: src, SoftLimit: soft}, nil
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// libc is the C library a test client image's programs are built against.
type libc string

const (
	// glibc: dynamically linked, as most distributions' programs; the image
	// carries the shared objects they load (ldd's list: the dynamic loader
	// and libc, which since glibc 2.34 holds the files and dns NSS modules),
	// a shell, cat, sleep and getent from the build machine, and an
	// nsswitch.conf.
	glibc libc = "glibc"
	// musl: static (musl-gcc -static), as an Alpine-based program behaves;
	// nothing but the programs.
	musl libc = "musl"
)

// clientSources are the test clients (test/e2e's: one getaddrinfo lookup
// printing its result, and the paced lookup loop printing a summary of
// lookups, failures and slow lookups), built into every client image as
// /<name>.
var clientSources = []string{"test/e2e/testdata/gai.c", "test/e2e/testdata/gailoop.c"}

// glibcHostPrograms are the build machine's programs a glibc client image
// carries, by the path they get there: enough to print a pod's resolv.conf
// (`sh -c 'cat /etc/resolv.conf'`), to stay up, and to look names up as
// glibc's own tool does.
var glibcHostPrograms = []string{"/bin/sh", "/bin/cat", "/bin/sleep", "/usr/bin/getent"}

// nsswitch is a glibc image's /etc/nsswitch.conf: kubelet's /etc/hosts, then
// DNS, as Debian's.
const nsswitch = "hosts: files dns\n"

// clientFiles builds the C clients against lc and returns the image's files.
func clientFiles(ctx context.Context, o options, lc libc) ([]file, error) {
	dir, err := os.MkdirTemp("", "poddns-clients-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cc, flags := "gcc", []string{"-O2", "-Wall", "-Werror"}
	if lc == musl {
		cc, flags = "musl-gcc", append(flags, "-static")
	}
	var files []file
	programs := map[string]string{} // path in the image -> path here, for ldd
	for _, src := range clientSources {
		name := strings.TrimSuffix(filepath.Base(src), ".c")
		bin := filepath.Join(dir, name)
		cmd := exec.CommandContext(ctx, cc, append(flags, "-o", bin, filepath.Join(o.root, src))...)
		if msg, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s %s (Debian: apt-get install gcc musl-tools): %w\n%s", cc, src, err, msg)
		}
		programs["/"+name] = bin
	}
	if lc == glibc {
		for _, p := range glibcHostPrograms {
			host, err := exec.LookPath(filepath.Base(p))
			if err != nil {
				return nil, fmt.Errorf("host program for the glibc client image: %w", err)
			}
			programs[p] = host
		}
	}
	libs := map[string]bool{}
	for _, p := range slices.Sorted(maps.Keys(programs)) {
		data, err := os.ReadFile(programs[p])
		if err != nil {
			return nil, err
		}
		files = append(files, file{p, 0o755, data})
		if lc != glibc {
			continue
		}
		needed, err := sharedObjects(ctx, programs[p])
		if err != nil {
			return nil, err
		}
		for _, l := range needed {
			libs[l] = true
		}
	}
	for _, l := range slices.Sorted(maps.Keys(libs)) {
		// ReadFile follows symbolic links (Debian's /lib64/ld-linux-x86-64.so.2
		// is one): the image gets a regular file at the path the programs
		// ask for.
		data, err := os.ReadFile(l)
		if err != nil {
			return nil, fmt.Errorf("shared object: %w", err)
		}
		files = append(files, file{l, 0o755, data})
	}
	if lc == glibc {
		files = append(files, file{"/etc/nsswitch.conf", 0o644, []byte(nsswitch)})
	}
	return files, nil
}

// sharedObjects returns the absolute paths of the shared objects ldd says
// program loads (the dynamic loader included; the kernel's vDSO has no
// file and is left out).
func sharedObjects(ctx context.Context, program string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ldd", program).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", program, err)
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)",
		// "/lib64/ld-linux-x86-64.so.2 (0x...)", "linux-vdso.so.1 (0x...)".
		line := strings.TrimSpace(sc.Text())
		if _, target, ok := strings.Cut(line, "=> "); ok {
			line = target
		}
		if p, _, _ := strings.Cut(line, " "); strings.HasPrefix(p, "/") {
			libs = append(libs, p)
		} else if strings.Contains(line, "not found") {
			return nil, fmt.Errorf("ldd %s: %s", program, line)
		}
	}
	return libs, nil
}

package main

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poddns/poddns/internal/testenv"
)

// TestClientImages builds both test client images, checks what each holds
// (programs, the glibc image's loader and libc, static musl programs), then
// runs their programs chrooted into the unpacked image as a container would:
// a lookup answered from the hosts file, the lookup loop's summary, and the
// glibc image's shell reading resolv.conf. (DNS over the wire is the
// one-node cluster's test: here the names come from /etc/hosts, so no query
// leaves the process.)
func TestClientImages(t *testing.T) {
	testenv.RequireCommand(t, "gcc", "musl-gcc", "ldd")
	tests := []struct {
		target  string
		static  bool
		want    []string // files the image must hold
		runs    [][]string
		outputs []string // a regular expression per run
	}{
		{
			target: "client-glibc",
			want:   []string{"gai", "gailoop", "bin/sh", "bin/cat", "bin/sleep", "usr/bin/getent", "etc/nsswitch.conf"},
			runs: [][]string{
				{"/gai", "probe.test"},
				{"/gailoop", "probe.test", "1", "100"},
				{"/usr/bin/getent", "ahostsv4", "probe.test"},
				{"/bin/sh", "-c", "cat /etc/resolv.conf"},
			},
			outputs: []string{`(?m)^addr 192\.0\.2\.7$`, `^lookups \d+ failed 0 slow 0 `, `^192\.0\.2\.7 +STREAM probe\.test`, `^nameserver 127\.0\.0\.1\n`},
		},
		{
			target: "client-musl", static: true,
			want: []string{"gai", "gailoop"},
			runs: [][]string{
				{"/gai", "probe.test"},
				{"/gailoop", "probe.test", "1", "100"},
			},
			outputs: []string{`(?m)^addr 192\.0\.2\.7$`, `^lookups \d+ failed 0 slow 0 `},
		},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			img, cf := buildImage(t, testOptions(t), tt.target)
			if cf.Config.User != "65532:65532" {
				t.Errorf("User %q", cf.Config.User)
			}
			files, content := layerFiles(t, img)
			for _, w := range tt.want {
				if _, ok := files[w]; !ok {
					t.Errorf("%s: not in the image", w)
				}
			}
			for _, prog := range []string{"gai", "gailoop"} {
				bin, err := elf.NewFile(bytes.NewReader(content[prog]))
				if err != nil {
					t.Fatalf("%s: not an ELF binary: %v", prog, err)
				}
				interp := ""
				for _, p := range bin.Progs {
					if p.Type == elf.PT_INTERP {
						b := make([]byte, p.Filesz)
						if _, err := p.ReadAt(b, 0); err != nil {
							t.Fatal(err)
						}
						interp = strings.TrimRight(string(b), "\x00")
					}
				}
				switch {
				case tt.static && interp != "":
					t.Errorf("%s: dynamically linked (%s), want static", prog, interp)
				case !tt.static && interp == "":
					t.Errorf("%s: static, want glibc's dynamic loader", prog)
				case !tt.static:
					if _, ok := files[strings.TrimPrefix(interp, "/")]; !ok {
						t.Errorf("%s: its loader %s is not in the image", prog, interp)
					}
				}
			}

			testenv.RequireRoot(t)
			root := t.TempDir()
			for name, h := range files {
				var err error
				dst := filepath.Join(root, name)
				if h.FileInfo().IsDir() {
					err = os.MkdirAll(dst, 0o755)
				} else if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
					err = os.WriteFile(dst, content[name], os.FileMode(h.Mode)&0o777)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			// What kubelet mounts into a container.
			for name, data := range map[string]string{
				"etc/hosts":       "127.0.0.1 localhost\n192.0.2.7 probe.test\n",
				"etc/resolv.conf": "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
			} {
				if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for i, argv := range tt.runs {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
				cmd.Dir = "/"
				cmd.Env = cf.Config.Env
				cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
				got, err := cmd.CombinedOutput()
				cancel()
				if err != nil {
					t.Errorf("%q in the image: %v\n%s", argv, err, got)
					continue
				}
				if !regexp.MustCompile(tt.outputs[i]).Match(got) {
					t.Errorf("%q in the image printed %q, want a match of %s", argv, got, tt.outputs[i])
				}
			}
		})
	}
}

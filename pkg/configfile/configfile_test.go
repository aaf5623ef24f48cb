package configfile_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/configfile"
)

var id = configfile.Identity{APIVersion: "test.poddns.io/v1", Kind: "Thing"}

const head = "apiVersion: test.poddns.io/v1\nkind: Thing\n"

type thing struct {
	APIVersion string              `json:"apiVersion"`
	Kind       string              `json:"kind"`
	Name       string              `json:"name"`
	Count      int                 `json:"count"`
	Wait       configfile.Duration `json:"wait"`
	File       string              `json:"file"`
	Inner      struct {
		Items []string `json:"items"`
	} `json:"inner"`
}

func (t *thing) Paths() []*string { return []*string{&t.File} }

func defaults() thing {
	return thing{Name: "default", Count: 3, Wait: configfile.Duration(time.Second)}
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string // want: the error, "" for none
	}{
		{"over defaults", head + "count: 0\n", ""},
		{"field case", head + "Count: 1\n", "f.yaml: document 1, line 3: Count: unknown field (field names are case-sensitive)"},
		{"unknown nested", head + "inner:\n  items: [a]\n  item: b\n", "f.yaml: document 1, line 5: inner.item: unknown field"},
		{"duplicate", head + "count: 1\ncount: 2\n", "f.yaml: document 1, line 4: count: duplicate field (first at line 3)"},
		{"wrong type", head + "inner:\n  items: a\n", "f.yaml: document 1, line 4: inner.items: cannot unmarshal string into []string"},
		{"duration", head + "wait: soon\n", `f.yaml: document 1, line 3: wait: invalid duration "soon"`},
		{"extra document", head + "---\n# comment only\n---\n" + head, "f.yaml: document 2, line 6: 2 documents: expected one Thing"},
		{"empty", "\n---\n", "f.yaml: no document: expected one Thing"},
		{"kind", "apiVersion: test.poddns.io/v1\nkind: Other\n", `f.yaml: document 1, line 2: kind: unsupported value "Other": want "Thing"`},
		{"syntax", head + "count: [\n", "f.yaml: document 1, line 3: invalid YAML"},
		{"scalar", "3\n", "f.yaml: document 1, line 1: not a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := defaults()
			err := configfile.Decode([]byte(tc.in), "f.yaml", id, &v)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Decode: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Decode error = %v, want one containing %q", err, tc.want)
			case tc.want != "":
				var ce *configfile.Error
				if !errors.As(err, &ce) {
					t.Errorf("error %T is not a *configfile.Error", err)
				}
				return
			}
			if v.Count != 0 || v.Name != "default" || v.Wait.D() != time.Second {
				t.Errorf("decoded %+v: want count 0 (the file's) and the other defaults", v)
			}
		})
	}
}

func TestDecodeFilePaths(t *testing.T) {
	dir := t.TempDir()
	p := testenv.WriteFile(t, dir, "t.yaml", head+"file: sub/x.yaml\n")
	v := defaults()
	if err := configfile.DecodeFile(p, id, &v); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "sub/x.yaml"); v.File != want {
		t.Errorf("file %q, want %q", v.File, want)
	}
	v = defaults()
	v.File = "/abs"
	if err := configfile.DecodeFile(p, id, &v); err != nil || v.File != filepath.Join(dir, "sub/x.yaml") {
		t.Errorf("file %q, %v", v.File, err)
	}
	if err := configfile.DecodeFile(filepath.Join(dir, "none.yaml"), id, &v); err == nil {
		t.Error("missing file: no error")
	}
}

// TestLoadOrder: file, then the flags' bind step, then validation.
func TestLoadOrder(t *testing.T) {
	p := testenv.WriteFile(t, t.TempDir(), "t.yaml", head+"count: 7\nname: file\n")
	v := defaults()
	err := configfile.Load(p, id, &v, func() error {
		if v.Count != 7 {
			t.Errorf("bind saw count %d, want the file's 7", v.Count)
		}
		v.Count = 0
		return nil
	})
	if err != nil || v.Count != 0 || v.Name != "file" {
		t.Errorf("Load: %+v, %v", v, err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(head + "count: 1\nwait: 1s\ninner: {items: [a, b]}\n"))
	f.Add([]byte(head + "count: 1\ncount: 2\n---\nx: 1\n"))
	f.Add([]byte("apiVersion: [\n"))
	f.Add([]byte(head + "wait: 5\ninner: {items: &a [*a]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v := defaults()
		err := configfile.Decode(data, "f.yaml", id, &v)
		if err == nil {
			if v.APIVersion != id.APIVersion || v.Kind != id.Kind {
				t.Fatalf("Decode accepted apiVersion %q kind %q", v.APIVersion, v.Kind)
			}
			return
		}
		for _, e := range configfile.Leaves(err) {
			var ce *configfile.Error
			if !errors.As(e, &ce) || ce.File != "f.yaml" {
				t.Fatalf("error %T %v is not a *configfile.Error naming the file", e, e)
			}
		}
	})
}

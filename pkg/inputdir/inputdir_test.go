package inputdir_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/poddns/poddns/pkg/inputdir"
)

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("a: 1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	// A ConfigMap volume: keys are links into ..data, a link to a
	// timestamped directory.
	if err := os.MkdirAll(filepath.Join(dir, "..2026_12_06", "nested.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "..2026_12_06", "cm.yaml"), []byte("a: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link("..2026_12_06", "..data")
	link(filepath.Join("..data", "cm.yaml"), "cm.yaml")
	write("b.YML")
	write("a.json")
	write("notes.txt")
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	link(filepath.Join("..data", "nested.yaml"), "x.yaml") // a symlinked directory named x.yaml

	got, err := inputdir.Files(dir, []string{".yaml", ".yml", ".json"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range got {
		names = append(names, filepath.Base(f))
	}
	if want := []string{"a.json", "b.YML", "cm.yaml"}; !slices.Equal(names, want) {
		t.Errorf("files %q, want %q", names, want)
	}

	link("missing.yaml", "dangling.yaml")
	if _, err := inputdir.Files(dir, []string{".yaml"}); err == nil || !strings.Contains(err.Error(), "dangling.yaml") {
		t.Errorf("a dangling link: %v, want an error naming it", err)
	}
}

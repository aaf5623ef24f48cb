package migrate

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/poddns/poddns/internal/fuzzseed"
	"github.com/poddns/poddns/pkg/corefile"
	"github.com/poddns/poddns/pkg/serve/daemon"
)

// FuzzTranslate feeds arbitrary Corefiles to the translation (imports
// refused: the fuzzer must not read the machine's files). It must never
// panic; an error must be the Corefile's (*corefile.Error, with file and
// line): whatever parses translates into a configuration that loads and
// validates, everything dnsd cannot take reported as not translated.
func FuzzTranslate(f *testing.F) {
	fuzzseed.AddFiles(f, "../../testdata/corefiles/*/*Corefile")
	f.Add([]byte(".:53 {\n cache 99999999999 {\n  success 1 99999999999 99999999999\n  prefetch 1 1h 99%\n }\n kubernetes x {\n  ttl 99999\n }\n}\n"))
	f.Add([]byte("a.:1 b:2 {\n hosts f . {\n  1.2.3.4 a\n  ttl 999999999\n }\n rewrite name regex ( x\n forward . 1.1.1.1:0\n}\n"))
	refuse := func(pattern, dir string) ([]corefile.Source, error) { return nil, errors.New("imports refused") }
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "Corefile")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := translate(Input{Corefile: p, Getenv: func(string) string { return "" }}, refuse)
		if err != nil {
			var ce *corefile.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not the Corefile's", err)
			}
			return
		}
		c, err := daemon.ParseConfig(res.YAML, "migrated")
		if err != nil {
			t.Fatalf("output does not load: %v\n%s", err, res.YAML)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("output does not validate: %v", err)
		}
	})
}

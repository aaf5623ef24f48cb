package corefile

import (
	"errors"
	"testing"

	"github.com/poddns/poddns/internal/fuzzseed"
)

// FuzzParse feeds arbitrary Corefiles to the parser (imports refused). It
// must never panic, every error is an *Error with a line, and every
// directive parsed has a position in the file.
func FuzzParse(f *testing.F) {
	fuzzseed.AddFiles(f, "../../testdata/corefiles/*/*Corefile")
	f.Add([]byte(".:53 {\n  a \"b\\\"c\" {\n    d {$X}\n  }\n}\n(s) {\n}\n"))
	refuse := func(pattern, dir string) ([]Source, error) { return nil, errors.New("imports refused") }
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("Corefile", data, Options{Resolve: refuse, Getenv: func(string) string { return "x" }})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Pos.Line < 1 {
				t.Fatalf("error %v is not an *Error with a line", err)
			}
			return
		}
		var check func([]Directive)
		check = func(ds []Directive) {
			for _, d := range ds {
				if d.Pos.Line < 1 || d.Pos.File != "Corefile" {
					t.Fatalf("directive %s at %v", d, d.Pos)
				}
				check(d.Block)
			}
		}
		for _, s := range file.Servers {
			if len(s.Keys) == 0 {
				t.Fatalf("server block without keys at %v", s.Pos)
			}
			check(s.Directives)
		}
	})
}

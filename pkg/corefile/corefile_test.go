package corefile

import (
	"fmt"
	"strings"
	"testing"
)

// dump renders a parsed file compactly: a line per server block and per
// directive, nested blocks indented, each with its position.
func dump(f *File) string {
	var b strings.Builder
	var dirs func([]Directive, string)
	dirs = func(ds []Directive, indent string) {
		for _, d := range ds {
			fmt.Fprintf(&b, "%s%s %q @%s\n", indent, d.Name, d.Args, d.Pos)
			dirs(d.Block, indent+"  ")
		}
	}
	for _, s := range f.Servers {
		var ks []string
		for _, k := range s.Keys {
			ks = append(ks, fmt.Sprintf("%s|%s|%s", k.Scheme, k.Zone, k.Port))
		}
		fmt.Fprintf(&b, "server %s @%s\n", strings.Join(ks, " "), s.Pos)
		dirs(s.Directives, "  ")
	}
	return b.String()
}

// memResolver serves imports from a map of pattern to files.
func memResolver(files map[string][]Source) Resolver {
	return func(pattern, dir string) ([]Source, error) {
		s, ok := files[pattern]
		if !ok {
			return nil, fmt.Errorf("open %s: no such file", pattern)
		}
		return s, nil
	}
}

func TestParse(t *testing.T) {
	env := map[string]string{"UPSTREAM": "192.0.2.1", "ZONE": "example.org"}
	imports := map[string][]Source{
		"custom/*.override": {{Name: "custom/a.override", Data: []byte("log\nrewrite name exact a.example b.example\n")}},
		"custom/*.server":   {{Name: "custom/s.server", Data: []byte("corp.example:53 {\n  forward . 10.0.0.1\n}\n")}},
		"custom/none*":      nil,
	}
	for _, tt := range []struct {
		name, in, want string
	}{
		{"stock", `.:53 {
    errors
    health {
       lameduck 5s
    }
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
    }
    forward . /etc/resolv.conf
}
`, `server dns|.|53 @Corefile:1
  errors [] @Corefile:2
  health [] @Corefile:3
    lameduck ["5s"] @Corefile:4
  kubernetes ["cluster.local" "in-addr.arpa" "ip6.arpa"] @Corefile:6
    pods ["insecure"] @Corefile:7
    fallthrough ["in-addr.arpa" "ip6.arpa"] @Corefile:8
  forward ["." "/etc/resolv.conf"] @Corefile:10
`},
		{"keys, schemes, comments, quotes", `# comment
example.org:5353, tls://Example.COM.:853 other {  # trailing
  hosts {
    "192.0.2.1" "a b"   # quoted
  }
}
`, `server dns|example.org.|5353 tls|example.com.|853 dns|other.| @Corefile:2
  hosts [] @Corefile:3
    192.0.2.1 ["a b"] @Corefile:4
`},
		{"env", ".:53 {\n  forward . {$UPSTREAM} {%UPSTREAM%}\n  hosts /etc/hosts {$ZONE} {$NOPE}\n}\n",
			`server dns|.|53 @Corefile:1
  forward ["." "192.0.2.1" "192.0.2.1"] @Corefile:2
  hosts ["/etc/hosts" "example.org"] @Corefile:3
`},
		{"imports", ".:53 {\n  errors\n  import custom/*.override\n  import custom/none*\n  cache 30\n}\nimport custom/*.server\n",
			`server dns|.|53 @Corefile:1
  errors [] @Corefile:2
  log [] @custom/a.override:1
  rewrite ["name" "exact" "a.example" "b.example"] @custom/a.override:2
  cache ["30"] @Corefile:5
server dns|corp.example.|53 @custom/s.server:1
  forward ["." "10.0.0.1"] @custom/s.server:2
`},
		{"empty", "# nothing\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("Corefile", []byte(tt.in), Options{Resolve: memResolver(imports), Getenv: func(k string) string { return env[k] }})
			if err != nil {
				t.Fatal(err)
			}
			if got := dump(f); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	imports := map[string][]Source{
		"loop.conf": {{Name: "loop.conf", Data: []byte("import loop.conf\n")}},
		"bad.conf":  {{Name: "bad.conf", Data: []byte("x {\n  y {\n")}},
	}
	for _, tt := range []struct {
		name, in, want string
	}{
		{"unclosed server", ".:53 {\n  errors\n", "Corefile:1: block opened here is not closed (missing })"},
		{"unclosed directive", ".:53 {\n  health {\n    lameduck 5s\n}\n", "Corefile:1: block opened here is not closed (missing })"},
		{"no brace", ".:53\nerrors\n", "Corefile:2: server block .:53: expected { at the end of the line of its keys"},
		{"stray close", "}\n", "Corefile:1: unexpected }"},
		{"stray open", ".:53 {\n  {\n}\n", "Corefile:2: unexpected {"},
		{"bad port", ".:dns {\n}\n", `Corefile:1: server block key ".:dns": port "dns" is not a number`},
		{"unterminated quote", ".:53 {\n  hosts \"abc\n}\n", "Corefile:2: unterminated quoted string"},
		{"text after brace", ".:53 {\n  health { lameduck 5s\n  }\n}\n", "Corefile:2: health: text after { on the same line"},
		{"snippet", "(common) {\n  errors\n}\n", "Corefile:1: snippet (common): snippets are not supported"},
		{"import snippet", ".:53 {\n  import common\n}\n", "Corefile:2: import common: snippets are not supported (import a file or a glob pattern)"},
		{"import missing", ".:53 {\n  import /no/such\n}\n", "Corefile:2: import /no/such: open /no/such: no such file"},
		{"import without pattern", ".:53 {\n  import\n}\n", "Corefile:2: import: no file or pattern"},
		{"import cycle", "import loop.conf\n", "loop.conf:1: imports nested more than 10 deep (a cycle?)"},
		{"error in an imported file", "import bad.conf\n", "bad.conf:2: block opened here is not closed (missing })"},
		{"no keys", "{\n}\n", "Corefile:1: server block without a key (zone)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("Corefile", []byte(tt.in), Options{Resolve: memResolver(imports)})
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v, want %s", err, tt.want)
			}
		})
	}
}

package resolvconf

import (
	"strings"
	"testing"
)

// domains returns n search domains of exactly size characters each.
func domains(n, size int) []string {
	out := make([]string, n)
	for i := range out {
		d := string(rune('a'+i%26)) + strings.Repeat("x", size-1)
		out[i] = d[:size]
	}
	return out
}

func TestClientNotes(t *testing.T) {
	// A search line of 255 bytes with its newline: "search " (7) + 247 + 1.
	// 247 characters = 19 domains of 12 characters + 18 spaces + 1 more.
	under := append(domains(18, 12), strings.Repeat("y", 13)) // 18*12+13+18 = 247
	over := append(domains(18, 12), strings.Repeat("y", 14))  // 248: the line is 256 bytes
	cases := []struct {
		name string
		c    Config
		want []string // substrings, one per note, in order
	}{
		{"cluster default", Config{Searches: []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local"}, Options: []string{"ndots:5"}}, nil},
		{"empty", Config{}, nil},
		{"search line 255 bytes", Config{Searches: under}, []string{"glibc before 2.26"}},
		{"search line 256 bytes", Config{Searches: over}, []string{"musl libc (e.g. Alpine images) ignores the search line: it is 256 bytes", "glibc before 2.26"}},
		{"six domains", Config{Searches: domains(6, 10)}, nil},
		{"seven domains", Config{Searches: domains(7, 10)}, []string{"this list has 7 domains, 76 characters"}},
		{"255 characters", Config{Searches: []string{strings.Repeat("a", 255)}}, []string{"musl"}},
		{"256 characters", Config{Searches: []string{strings.Repeat("a", 127), strings.Repeat("b", 128)}}, []string{"musl", "this list has 2 domains, 256 characters"}},
		{"options line 256 bytes", Config{Options: []string{"ndots:2", "x:" + strings.Repeat("z", 237)}}, []string{"ignores the options line: it is 256 bytes"}},
		{"options line 255 bytes", Config{Options: []string{"ndots:2", "x:" + strings.Repeat("z", 236)}}, nil},
		{"ndots 15", Config{Options: []string{"ndots:15"}}, nil},
		{"ndots 16", Config{Options: []string{"ndots:16"}}, []string{"ndots:16 acts as ndots:15"}},
		{"no-aaaa", Config{Options: []string{"ndots:2", "no-aaaa"}}, []string{"musl libc (e.g. Alpine images) and older glibc ignore it"}},
		{"no-aaaa-ish", Config{Options: []string{"no-aaaa:1", "inet6"}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ClientNotes(tc.c)
			if len(got) != len(tc.want) {
				t.Fatalf("ClientNotes = %q, want %d notes containing %q", got, len(tc.want), tc.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Errorf("note %d = %q, want it to contain %q", i, got[i], tc.want[i])
				}
			}
		})
	}
	// The byte count is the rendered line's, newline included.
	for _, c := range []Config{{Searches: under}, {Searches: over}} {
		line, _, _ := strings.Cut(c.Render(), "\n")
		musl := len(line)+1 >= muslLineBuffer
		noted := strings.Contains(strings.Join(ClientNotes(c), "|"), "musl")
		if musl != noted {
			t.Errorf("rendered search line of %d bytes with newline: musl note %v, want %v", len(line)+1, noted, musl)
		}
	}
}

package resolvconf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    File
		wantErr string
	}{
		{
			name: "typical",
			in:   "nameserver 10.0.0.2\nsearch ec2.internal\noptions edns0 trust-ad\n",
			want: File{Nameservers: []string{"10.0.0.2"}, Searches: []string{"ec2.internal"}, Options: []string{"edns0", "trust-ad"}},
		},
		{
			name: "empty file",
			in:   "",
			want: File{},
		},
		{
			name: "hash comments, also indented, are skipped",
			in:   "# nameserver 1.1.1.1\n   # search a.example\n\t#options x\nnameserver 10.0.0.1\n",
			want: File{Nameservers: []string{"10.0.0.1"}},
		},
		{
			name: "semicolon lines are ignored only because ';' is no keyword",
			in:   "; nameserver 1.1.1.1\n;search a\nnameserver 10.0.0.1\n",
			want: File{Nameservers: []string{"10.0.0.1"}},
		},
		{
			name: "inline hash after search and options is data",
			in:   "search a.example # c\noptions ndots:2 #x\n",
			want: File{Searches: []string{"a.example", "#", "c"}, Options: []string{"ndots:2", "#x"}},
		},
		{
			name: "nameserver keeps only its second field, unvalidated, in order, with duplicates",
			in:   "nameserver 10.0.0.1 # primary\nnameserver not-an-ip\nnameserver fe80::1%eth0\nnameserver 10.0.0.1\n",
			want: File{Nameservers: []string{"10.0.0.1", "not-an-ip", "fe80::1%eth0", "10.0.0.1"}},
		},
		{
			name: "last search line wins",
			in:   "search a.example b.example\nsearch c.example\n",
			want: File{Searches: []string{"c.example"}},
		},
		{
			name: "bare search clears the list",
			in:   "search a.example\nsearch\n",
			want: File{Searches: []string{}},
		},
		{
			name: "lone dot dropped, one trailing dot trimmed, double dot keeps one",
			in:   "search . a.example. b.example.. .. c\n",
			want: File{Searches: []string{"a.example", "b.example.", ".", "c"}},
		},
		{
			name: "search entries are not de-duplicated",
			in:   "search a.example a.example. a.example\n",
			want: File{Searches: []string{"a.example", "a.example", "a.example"}},
		},
		{
			name: "domain, sortlist, lookup and wrong-case keywords are ignored",
			in:   "domain corp.example\nsortlist 10.0.0.0/8\nlookup file bind\nNameserver 1.1.1.1\nSEARCH x\nOptions y\nnameserver 10.0.0.1\n",
			want: File{Nameservers: []string{"10.0.0.1"}},
		},
		{
			name: "options are keyed by name across lines; later text wins, first position kept",
			in:   "options ndots:1 edns0 timeout:2\noptions attempts:3 ndots:4\noptions timeout\n",
			want: File{Options: []string{"ndots:4", "edns0", "timeout", "attempts:3"}},
		},
		{
			name: "option text is kept as written, empty value included",
			in:   "options ndots: rotate\n",
			want: File{Options: []string{"ndots:", "rotate"}},
		},
		{
			name: "option key is the text before the first colon",
			in:   "options a:b:c a:d :x :y\n",
			want: File{Options: []string{"a:d", ":y"}},
		},
		{
			name: "CRLF, tabs and unicode white space",
			in:   "nameserver\t10.0.0.1\r\nsearch\u00a0a.example\u2003b.example\r\n  options  rotate  \r\n",
			want: File{Nameservers: []string{"10.0.0.1"}, Searches: []string{"a.example", "b.example"}, Options: []string{"rotate"}},
		},
		{
			name:    "nameserver without address is an error, parsing goes on",
			in:      "nameserver\nnameserver 10.0.0.1\nsearch a.example\n",
			want:    File{Nameservers: []string{"10.0.0.1"}, Searches: []string{"a.example"}},
			wantErr: "nameserver list is empty ",
		},
		{
			name:    "several empty nameserver lines give one message",
			in:      "nameserver\n  nameserver  \n",
			want:    File{},
			wantErr: "nameserver list is empty ",
		},
		{
			name: "search without trailing newline at end of file",
			in:   "search a.example",
			want: File{Searches: []string{"a.example"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in))
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			if tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("Parse() error = %v, want %q", err, tt.wantErr)
			}
			if got == nil {
				t.Fatal("Parse() returned no file")
			}
			if !equalLists(got.Nameservers, tt.want.Nameservers) || !equalLists(got.Searches, tt.want.Searches) || !equalLists(got.Options, tt.want.Options) {
				t.Errorf("Parse() = %+v, want %+v", *got, tt.want)
			}
		})
	}
}

// equalLists treats nil and empty as equal.
func equalLists(a, b []string) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

func TestParseSizeLimit(t *testing.T) {
	line := "# padding\n"
	below := bytes.Repeat([]byte(line), (MaxFileSize-1)/len(line))
	below = append(below, bytes.Repeat([]byte{' '}, MaxFileSize-1-len(below))...)
	if len(below) != MaxFileSize-1 {
		t.Fatalf("setup: %d bytes", len(below))
	}
	if _, err := Parse(bytes.NewReader(below)); err != nil {
		t.Errorf("Parse(%d bytes) error = %v, want none", len(below), err)
	}
	exact := append(below, ' ')
	if _, err := Parse(bytes.NewReader(exact)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Parse(%d bytes) error = %v, want %v", len(exact), err, ErrTooLarge)
	}
	if ErrTooLarge.Error() != "the read limit is reached" {
		t.Errorf("ErrTooLarge text = %q", ErrTooLarge)
	}
}

func TestParseFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.conf")
	if _, err := ParseFile(missing); err == nil || err.Error() != "open "+missing+": no such file or directory" {
		t.Errorf("ParseFile(missing) error = %v", err)
	}
	bad := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(bad, []byte("nameserver\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ParseFile(bad)
	want := "Encountered error while parsing resolv conf file. Error: nameserver list is empty "
	if err == nil || err.Error() != want {
		t.Errorf("ParseFile(bad) error = %v, want %q", err, want)
	}
	good := filepath.Join(dir, "good.conf")
	if err := os.WriteFile(good, []byte("nameserver 10.0.0.1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := ParseFile(good)
	if err != nil || !equalLists(f.Nameservers, []string{"10.0.0.1"}) {
		t.Errorf("ParseFile(good) = %+v, %v", f, err)
	}
}

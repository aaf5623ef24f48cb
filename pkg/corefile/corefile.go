// Package corefile reads CoreDNS's configuration file, the Corefile, into
// server blocks and directives, so that `dnsd migrate` can translate a
// cluster's DNS configuration into dnsd's.
//
// It reads the Caddyfile syntax CoreDNS uses: server blocks (one or more
// keys such as `.:53` or `example.org:53`, then a brace block), directives
// (a name and its arguments up to the end of the line, optionally followed
// by a brace block of sub-directives on the lines that follow), `#`
// comments, double-quoted tokens, environment variables written `{$VAR}` or
// `{%VAR%}`, and `import` of files by path or glob pattern, at the top level
// (server blocks) or inside a block (directives). Snippets (`(name) {...}`)
// are refused with a clear error rather than guessed at. Every directive
// remembers the file and line it came from, so that a translation can say
// where each untranslated directive is.
package corefile

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Pos is where a token is: a file name (as given) and a line from 1.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Directive is one directive line: its name, its arguments and the
// sub-directives of its brace block (each a Directive too: the first word of
// a line is its name).
type Directive struct {
	Name  string
	Args  []string
	Block []Directive
	Pos   Pos
}

// String is the directive's line as written, without its block.
func (d Directive) String() string { return strings.Join(append([]string{d.Name}, d.Args...), " ") }

// Key is one key of a server block: the zone and the port (and the scheme
// when one is written, e.g. tls://).
type Key struct {
	// Zone is lower-case and fully qualified ("." for the root).
	Zone string
	// Port is the port written, or "" (CoreDNS's default, 53).
	Port string
	// Scheme is "dns" unless written otherwise (tls, https, grpc, quic).
	Scheme string
	// Raw is the key as written.
	Raw string
}

// Server is one server block.
type Server struct {
	Keys       []Key
	Directives []Directive
	Pos        Pos
}

// File is a parsed Corefile.
type File struct {
	Servers []Server
}

// Resolver finds the files an import names: pattern as written (after
// environment substitution) and the directory of the importing file. It
// returns each file's name (for positions) and content, in order; a pattern
// with glob characters may match nothing.
type Resolver func(pattern, dir string) ([]Source, error)

// Source is a named content.
type Source struct {
	Name string
	Data []byte
}

// FSResolver resolves imports on the file system, relative to the importing
// file's directory, as CoreDNS does.
func FSResolver(pattern, dir string) ([]Source, error) {
	p := pattern
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	var names []string
	if strings.ContainsAny(pattern, "*?[") {
		m, err := filepath.Glob(p)
		if err != nil {
			return nil, err
		}
		names = m
	} else {
		names = []string{p}
	}
	sort.Strings(names)
	var out []Source
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, Source{Name: n, Data: b})
	}
	return out, nil
}

// Options are what Parse needs besides the file.
type Options struct {
	// Resolve finds imported files (default FSResolver).
	Resolve Resolver
	// Getenv reads environment variables (default os.Getenv).
	Getenv func(string) string
}

// Error is a Corefile that cannot be read: where and why.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// maxImportDepth bounds nested imports (an import cycle ends there).
const maxImportDepth = 10

// ParseFile reads and parses the Corefile at path.
func ParseFile(path string, o Options) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b, o)
}

// Parse parses a Corefile's content; name is used in positions and its
// directory for relative imports.
func Parse(name string, data []byte, o Options) (*File, error) {
	if o.Resolve == nil {
		o.Resolve = FSResolver
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	p := &parser{o: o}
	toks, err := p.tokenize(name, data, 0)
	if err != nil {
		return nil, err
	}
	p.toks = toks
	return p.file()
}

type token struct {
	text   string
	quoted bool
	pos    Pos
	// nl is true for the first token of a line.
	nl bool
}

type parser struct {
	o    Options
	toks []token
	i    int
}

var envRe = regexp.MustCompile(`\{\$([A-Za-z_][A-Za-z0-9_]*)\}|\{%([A-Za-z_][A-Za-z0-9_]*)%\}`)

// tokenize splits one file into tokens, expanding environment variables and
// imports of files (an import line is replaced by the imported tokens).
func (p *parser) tokenize(name string, data []byte, depth int) ([]token, error) {
	if depth > maxImportDepth {
		return nil, &Error{Pos{name, 1}, fmt.Sprintf("imports nested more than %d deep (a cycle?)", maxImportDepth)}
	}
	text := envRe.ReplaceAllStringFunc(string(data), func(m string) string {
		s := envRe.FindStringSubmatch(m)
		v := s[1]
		if v == "" {
			v = s[2]
		}
		return p.o.Getenv(v)
	})
	var toks []token
	line, newLine := 1, true
	rs := []rune(text)
	for i := 0; i < len(rs); {
		c := rs[i]
		switch {
		case c == '\n':
			line++
			newLine = true
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(rs) && rs[i] != '\n' {
				i++
			}
		case c == '"':
			start := line
			var b strings.Builder
			i++
			for {
				if i >= len(rs) {
					return nil, &Error{Pos{name, start}, "unterminated quoted string"}
				}
				if rs[i] == '\\' && i+1 < len(rs) && (rs[i+1] == '"' || rs[i+1] == '\\') {
					b.WriteRune(rs[i+1])
					i += 2
					continue
				}
				if rs[i] == '"' {
					i++
					break
				}
				if rs[i] == '\n' {
					line++
				}
				b.WriteRune(rs[i])
				i++
			}
			toks = append(toks, token{text: b.String(), quoted: true, pos: Pos{name, start}, nl: newLine})
			newLine = false
		default:
			var b strings.Builder
			for i < len(rs) && !strings.ContainsRune(" \t\r\n", rs[i]) {
				b.WriteRune(rs[i])
				i++
			}
			toks = append(toks, token{text: b.String(), pos: Pos{name, line}, nl: newLine})
			newLine = false
		}
	}
	// Expand imports: "import" as the first token of a line, the pattern
	// on the same line.
	var out []token
	for k := 0; k < len(toks); k++ {
		t := toks[k]
		if !(t.nl && !t.quoted && t.text == "import") {
			out = append(out, t)
			continue
		}
		if k+1 >= len(toks) || toks[k+1].nl {
			return nil, &Error{t.pos, "import: no file or pattern"}
		}
		pat := toks[k+1]
		if k+2 < len(toks) && !toks[k+2].nl {
			return nil, &Error{t.pos, "import: arguments after the pattern (snippets with arguments are not supported)"}
		}
		k++
		if !strings.ContainsAny(pat.text, "/*?[.") {
			return nil, &Error{t.pos, fmt.Sprintf("import %s: snippets are not supported (import a file or a glob pattern)", pat.text)}
		}
		srcs, err := p.o.Resolve(pat.text, filepath.Dir(name))
		if err != nil {
			return nil, &Error{t.pos, fmt.Sprintf("import %s: %v", pat.text, err)}
		}
		for _, s := range srcs {
			sub, err := p.tokenize(s.Name, s.Data, depth+1)
			if err != nil {
				return nil, err
			}
			if len(sub) > 0 {
				sub[0].nl = true
			}
			out = append(out, sub...)
		}
		// The token after an import starts a line.
		if k+1 < len(toks) {
			toks[k+1].nl = true
		}
	}
	return out, nil
}

func (p *parser) peek() (token, bool) {
	if p.i >= len(p.toks) {
		return token{}, false
	}
	return p.toks[p.i], true
}

func (p *parser) lastPos() Pos {
	if len(p.toks) == 0 {
		return Pos{Line: 1}
	}
	return p.toks[len(p.toks)-1].pos
}

func isOpen(t token) bool  { return !t.quoted && t.text == "{" }
func isClose(t token) bool { return !t.quoted && t.text == "}" }

func (p *parser) file() (*File, error) {
	f := &File{}
	for {
		if _, ok := p.peek(); !ok {
			return f, nil
		}
		s, err := p.server()
		if err != nil {
			return nil, err
		}
		f.Servers = append(f.Servers, s)
	}
}

// server reads keys up to "{", then directives up to "}".
func (p *parser) server() (Server, error) {
	first, _ := p.peek()
	s := Server{Pos: first.pos}
	if strings.HasPrefix(first.text, "(") && strings.HasSuffix(first.text, ")") {
		return s, &Error{first.pos, fmt.Sprintf("snippet %s: snippets are not supported", first.text)}
	}
	for {
		t, ok := p.peek()
		if !ok {
			return s, &Error{p.lastPos(), "server block without {"}
		}
		if isClose(t) {
			return s, &Error{t.pos, "unexpected }"}
		}
		if isOpen(t) {
			p.i++
			break
		}
		if len(s.Keys) > 0 && t.nl {
			return s, &Error{t.pos, fmt.Sprintf("server block %s: expected { at the end of the line of its keys", s.Keys[0].Raw)}
		}
		p.i++
		for _, raw := range strings.Split(t.text, ",") {
			if raw == "" {
				continue
			}
			k, err := parseKey(raw)
			if err != nil {
				return s, &Error{t.pos, err.Error()}
			}
			s.Keys = append(s.Keys, k)
		}
	}
	if len(s.Keys) == 0 {
		return s, &Error{first.pos, "server block without a key (zone)"}
	}
	ds, err := p.directives(s.Pos)
	if err != nil {
		return s, err
	}
	s.Directives = ds
	return s, nil
}

// directives reads lines up to the closing "}" (consumed).
func (p *parser) directives(open Pos) ([]Directive, error) {
	var out []Directive
	for {
		t, ok := p.peek()
		if !ok {
			return nil, &Error{open, "block opened here is not closed (missing })"}
		}
		if isClose(t) {
			p.i++
			return out, nil
		}
		if isOpen(t) {
			return nil, &Error{t.pos, "unexpected {"}
		}
		d := Directive{Name: t.text, Pos: t.pos}
		p.i++
		for {
			a, ok := p.peek()
			if !ok || a.nl || isClose(a) {
				break
			}
			p.i++
			if isOpen(a) {
				if nt, ok := p.peek(); ok && !nt.nl && !isClose(nt) {
					return nil, &Error{nt.pos, fmt.Sprintf("%s: text after { on the same line", d.Name)}
				}
				sub, err := p.directives(a.pos)
				if err != nil {
					return nil, err
				}
				d.Block = sub
				if nt, ok := p.peek(); ok && !nt.nl && !isClose(nt) {
					return nil, &Error{nt.pos, fmt.Sprintf("%s: text after } on the same line", d.Name)}
				}
				break
			}
			d.Args = append(d.Args, a.text)
		}
		out = append(out, d)
	}
}

var portRe = regexp.MustCompile(`^[0-9]{1,5}$`)

// parseKey reads a server block key: [scheme://]zone[:port].
func parseKey(raw string) (Key, error) {
	k := Key{Raw: raw, Scheme: "dns"}
	s := raw
	if i := strings.Index(s, "://"); i >= 0 {
		k.Scheme = strings.ToLower(s[:i])
		s = s[i+3:]
	}
	if i := strings.LastIndex(s, ":"); i >= 0 {
		k.Port = s[i+1:]
		s = s[:i]
		if !portRe.MatchString(k.Port) {
			return k, fmt.Errorf("server block key %q: port %q is not a number", raw, k.Port)
		}
	}
	if s == "" {
		s = "."
	}
	if strings.Contains(s, "/") {
		return k, fmt.Errorf("server block key %q: reverse zones written as a CIDR are not supported", raw)
	}
	s = strings.ToLower(s)
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	k.Zone = s
	return k, nil
}

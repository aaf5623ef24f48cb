package resolvconf

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
)

// MaxFileSize is the most kubelet reads of a node's resolv.conf; a file of this
// size or more is refused (kubelet's maxResolvConfLength, 10 MiB).
const MaxFileSize = 10 << 20

// ErrTooLarge is kubelet's error for a node resolv.conf of MaxFileSize bytes or more.
var ErrTooLarge = errors.New("the read limit is reached")

// errEmptyNameserver is kubelet's text, trailing space included, for a
// "nameserver" line without an address.
const errEmptyNameserver = "nameserver list is empty "

// File is a node's resolv.conf as kubelet understands it. Only three keywords
// count: nameserver, search and options; everything else (domain, sortlist,
// misspelt or upper-case keywords) is ignored.
type File struct {
	// Nameservers are the addresses of every nameserver line, in file order,
	// neither validated nor de-duplicated.
	Nameservers []string
	// Searches is the last search line: entries that are exactly "." dropped,
	// one trailing dot removed from the others.
	Searches []string
	// Options are the option tokens of every options line, one per name (the
	// text before the first ':'); a later token replaces an earlier one of the
	// same name in its position. Order: first appearance of each name.
	Options []string
}

// Parse reads a node's resolv.conf with kubelet's rules: lines whose trimmed
// form starts with '#' are comments, fields are separated by any white space,
// keywords are case-sensitive. A nameserver line without an address is an
// error, but parsing goes on: the returned File holds everything read, and the
// error says what kubelet would refuse. At most MaxFileSize bytes are read.
func Parse(r io.Reader) (*File, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize))
	if err != nil {
		return nil, err
	}
	if len(data) >= MaxFileSize {
		return nil, ErrTooLarge
	}
	return parse(string(data))
}

// ParseFile opens and parses path. Errors are kubelet's: the open error as the
// operating system gives it, or the parse error wrapped as kubelet wraps it.
func ParseFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	file, err := Parse(f)
	if err != nil {
		return file, wrapParseError(err)
	}
	return file, nil
}

// wrapParseError gives a parse error kubelet's text for a failed GetPodDNS.
func wrapParseError(err error) error {
	return fmt.Errorf("Encountered error while parsing resolv conf file. Error: %w", err) //nolint:staticcheck // kubelet's exact text
}

func parse(data string) (*File, error) {
	f := &File{}
	var opts optionSet
	var errs []error
	for line := range strings.SplitSeq(data, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "nameserver":
			if len(fields) < 2 {
				errs = append(errs, errors.New(errEmptyNameserver))
				continue
			}
			f.Nameservers = append(f.Nameservers, fields[1])
		case "search":
			f.Searches = f.Searches[:0:0]
			for _, s := range fields[1:] {
				if s != "." {
					f.Searches = append(f.Searches, strings.TrimSuffix(s, "."))
				}
			}
		case "options":
			for _, o := range fields[1:] {
				name, _, _ := strings.Cut(o, ":")
				opts.set(name, o)
			}
		}
	}
	f.Options = opts.values()
	if len(errs) > 0 {
		return f, utilerrors.NewAggregate(errs)
	}
	return f, nil
}

// optionSet is an insertion-ordered map from an option's name to its text: the
// deterministic stand-in for the Go maps kubelet keeps options in.
type optionSet struct {
	names []string
	text  map[string]string
}

func (s *optionSet) set(name, text string) {
	if s.text == nil {
		s.text = make(map[string]string, 4)
	}
	if _, ok := s.text[name]; !ok {
		s.names = append(s.names, name)
	}
	s.text[name] = text
}

func (s *optionSet) values() []string {
	if len(s.names) == 0 {
		return nil
	}
	out := make([]string, len(s.names))
	for i, n := range s.names {
		out[i] = s.text[n]
	}
	return out
}

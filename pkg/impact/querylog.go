package impact

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
)

// Entry is one line of dnsd's query log (package pkg/serve/querylog), or of a
// capture in the same shape: every field of the line, so that
// pkg/serve/querylog's tests decode the lines dnsd writes strictly into
// this type, the one impact reads them with. Impact does not use Proto.
type Entry struct {
	Time      time.Time `json:"time"`
	Client    string    `json:"client"`
	Proto     string    `json:"proto"`
	ID        uint16    `json:"id"`
	Namespace string    `json:"namespace"`
	Pod       string    `json:"pod"`
	Name      string    `json:"name"`
	Type      string    `json:"type"`
	Rcode     string    `json:"rcode"`
	Source    string    `json:"source"`
	// Duration is how long dnsd took to answer, in seconds.
	Duration float64 `json:"duration"`
}

// end is when the reply was sent: the client's next question of a walk
// comes after it.
func (e *Entry) end() time.Time {
	return e.Time.Add(time.Duration(e.Duration * float64(time.Second)))
}

// Sources the replay looks at (serve.Source names).
const (
	sourceCompletion = "completion"
	sourceFiltered   = "filtered"
)

// maxLine bounds one log line; dnsd's are a few hundred bytes.
const maxLine = 64 << 10

// ReadLog reads query log lines from r (named file in errors). Empty lines
// are skipped; a line that is not a query log object is an error naming
// the file and line, and nothing is returned.
func ReadLog(r io.Reader, file string) ([]Entry, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	var out []Entry
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("%s:%d: not a query log line: %w", file, n, err)
		}
		if e.Name == "" || e.Type == "" || e.Rcode == "" || e.Time.IsZero() {
			return nil, fmt.Errorf("%s:%d: a query log line needs time, name, type and rcode", file, n)
		}
		if e.Client != "" {
			if _, err := netip.ParseAddrPort(e.Client); err != nil {
				return nil, fmt.Errorf("%s:%d: client %q: %w", file, n, e.Client, err)
			}
		}
		e.Name = strings.ToLower(e.Name)
		if !strings.HasSuffix(e.Name, ".") {
			e.Name += "."
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return out, nil
}

// Answers is the oracle a query log makes: for every wire name it holds,
// the rcode per type (the last logged) and what is known of NODATA.
type Answers map[string]*Answer

// NewAnswers collects the answers of entries.
func NewAnswers(entries []Entry) Answers {
	as := Answers{}
	for _, e := range entries {
		if e.Source == sourceCompletion {
			// A completed reply is a CNAME for another name: it says
			// nothing of this one.
			continue
		}
		a := as[e.Name]
		if a == nil {
			a = &Answer{Rcodes: map[string]string{}}
			as[e.Name] = a
		}
		a.Rcodes[e.Type] = e.Rcode
		if e.Source == sourceFiltered && e.Rcode == rcodeNoError {
			a.markNoAddr(e.Type)
		}
	}
	return as
}

// Answer implements Oracle.
func (as Answers) Answer(name string) (*Answer, bool) {
	a, ok := as[strings.ToLower(name)]
	return a, ok
}

func (a *Answer) markNoAddr(t string) {
	if a.NoAddr == nil {
		a.NoAddr = map[string]bool{}
	}
	a.NoAddr[t] = true
}

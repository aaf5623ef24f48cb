package errorlog_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/poddns/poddns/internal/syncbuf"
	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/errorlog"
)

type entry struct {
	Level, Msg, Error, Kind, First string
	Count                          int
}

// entries decodes the JSON lines written to out so far.
func entries(t *testing.T, out *syncbuf.Buffer) []entry {
	var es []entry
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line == "" {
			continue
		}
		var e entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		es = append(es, e)
	}
	return es
}

func newLog(t *testing.T, c errorlog.Config) (*errorlog.Log, *syncbuf.Buffer) {
	t.Helper()
	out := &syncbuf.Buffer{}
	l, err := errorlog.New(c, slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return l, out
}

// TestConsolidate: the first error of a kind is logged at once, its
// repeats within the window make one line with their count; a pattern
// makes errors of different text one kind; kinds beyond MaxKinds are
// counted under "other".
func TestConsolidate(t *testing.T) {
	c := errorlog.Config{Enabled: true, Consolidate: configfile.Duration(time.Hour), Patterns: []string{`^forward: read udp .*: i/o timeout$`}}
	l, out := newLog(t, c)
	refused := errors.New("connection refused")
	for i := range 100 {
		l.Error(fmt.Errorf("forward: read udp 127.0.0.1:%d->192.0.2.53:53: i/o timeout", 30000+i))
		// The default kind: the handler and the innermost cause.
		l.Error(&serve.Error{Handler: "cache", Err: fmt.Errorf("q%d.example.com. A: %w", i, fmt.Errorf("port %d: %w", i, refused))})
	}
	if es := entries(t, out); len(es) != 2 || es[0].Msg != "handler error" || es[0].Error != "forward: read udp 127.0.0.1:30000->192.0.2.53:53: i/o timeout" {
		t.Fatalf("before the window ends: %+v, want the first of each kind", es)
	}
	for i := range errorlog.MaxKinds + 10 {
		l.Error(fmt.Errorf("kind %c%c", 'a'+i/26, 'a'+i%26))
	}
	l.Close()
	counts := map[string]int{}
	logged := 0
	for _, e := range entries(t, out) {
		if e.Level != "ERROR" {
			t.Errorf("level %s: %+v", e.Level, e)
		}
		switch e.Msg {
		case "handler error":
			logged++
		case "handler errors repeated":
			counts[e.Kind] = e.Count
		}
	}
	if logged != errorlog.MaxKinds {
		t.Errorf("%d errors logged at once, want %d (one per kind)", logged, errorlog.MaxKinds)
	}
	want := map[string]int{"cache: connection refused": 99, c.Patterns[0]: 99, "other": 12}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("repeats %v, want %v", counts, want)
	}
}

// TestWindow: a new window logs a kind's first error again.
func TestWindow(t *testing.T) {
	l, out := newLog(t, errorlog.Config{Enabled: true, Consolidate: configfile.Duration(50 * time.Millisecond)})
	defer l.Close()
	l.Error(errors.New("boom"))
	l.Error(errors.New("boom"))
	deadline := time.Now().Add(5 * time.Second)
	for len(entries(t, out)) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	l.Error(errors.New("boom"))
	es := entries(t, out)
	if len(es) != 3 || es[1].Msg != "handler errors repeated" || es[1].Count != 1 || es[2].Msg != "handler error" {
		t.Errorf("%+v", es)
	}
}

// TestOffAndUnconsolidated: off, errors go to debug; with consolidate 0,
// every error is logged.
func TestOffAndUnconsolidated(t *testing.T) {
	l, out := newLog(t, errorlog.Defaults())
	l.Error(errors.New("x"))
	l.Close()
	if es := entries(t, out); len(es) != 1 || es[0].Level != "DEBUG" {
		t.Errorf("off: %+v", es)
	}
	l, out = newLog(t, errorlog.Config{Enabled: true})
	for range 3 {
		l.Error(errors.New("x"))
	}
	l.Close()
	if es := entries(t, out); len(es) != 3 {
		t.Errorf("consolidate 0: %+v", es)
	}
	if (errorlog.Config{Patterns: []string{"("}}).Validate() == nil || (errorlog.Config{Consolidate: -1}).Validate() == nil {
		t.Error("a bad pattern or a negative window is valid")
	}
}

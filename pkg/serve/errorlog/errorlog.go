// Package errorlog is dnsd's errors log, CoreDNS's errors plugin for
// dnsd: the errors handlers return (an upstream that timed out, a reply
// that could not be written) logged at error level, with repeats
// consolidated so that a failing upstream under load makes a few lines,
// not one per query.
//
// The first error of a kind is logged at once; further errors of that
// kind within the consolidation window are only counted, and when the
// window ends one line says how many there were ("handler errors
// repeated", with the count, the kind and the first error). The kind of an
// error is the first of the configured patterns (regular expressions, as
// CoreDNS's `consolidate DURATION REGEXP`) its text matches; else the
// handler that returned it and the text of its innermost cause with every
// number masked ("forward: connection refused", "forward: i/o timeout"):
// the query name and the ports in the full text differ from query to
// query, the cause does not. At most MaxKinds kinds are tracked per window; errors of further
// kinds are counted together under "other".
//
// Off (the default), handler errors are logged at debug level only, as
// before: metrics count them either way (poddns_dns_errors_total).
package errorlog

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/serve"
)

// Config is the errors block of dnsd's DNSDConfig.
type Config struct {
	// Enabled logs handler errors at error level (default off: debug).
	Enabled bool `json:"enabled"`
	// Consolidate is the window within which repeats of an error are
	// counted rather than logged (default 10s; 0: every error logged).
	Consolidate configfile.Duration `json:"consolidate"`
	// Patterns are regular expressions naming kinds of errors: errors
	// whose text matches the same pattern are repeats of each other.
	Patterns []string `json:"patterns,omitempty"`
}

// DefaultConsolidate is the default consolidation window.
const DefaultConsolidate = 10 * time.Second

// MaxKinds bounds the kinds of errors tracked in one window.
const MaxKinds = 64

// Defaults returns the errors log's defaults.
func Defaults() Config { return Config{Consolidate: configfile.Duration(DefaultConsolidate)} }

// Validate checks c.
func (c Config) Validate() error {
	var errs []error
	if c.Consolidate < 0 {
		errs = append(errs, fmt.Errorf("errors: consolidate %s is negative", c.Consolidate))
	}
	for _, p := range c.Patterns {
		if _, err := regexp.Compile(p); err != nil {
			errs = append(errs, fmt.Errorf("errors: pattern %q: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// Log logs errors as configured; Close reports the repeats counted so far
// and stops it.
type Log struct {
	log      *slog.Logger
	enabled  bool
	window   time.Duration
	patterns []*regexp.Regexp

	mu     sync.Mutex
	kinds  map[string]*kind
	other  int
	stop   chan struct{}
	done   chan struct{}
	closed bool
}

type kind struct {
	first   string
	repeats int
}

// New returns the errors log for c, logging to log.
func New(c Config, log *slog.Logger) (*Log, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	l := &Log{log: log, enabled: c.Enabled, window: c.Consolidate.D(), kinds: map[string]*kind{},
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, p := range c.Patterns {
		l.patterns = append(l.patterns, regexp.MustCompile(p))
	}
	if l.enabled && l.window > 0 {
		go l.run()
	} else {
		close(l.done)
	}
	return l, nil
}

// Error logs err (an error a handler returned).
func (l *Log) Error(err error) {
	if !l.enabled {
		l.log.Debug("handler error", "error", err)
		return
	}
	if l.window == 0 {
		l.log.Error("handler error", "error", err)
		return
	}
	text := err.Error()
	key := ""
	for _, p := range l.patterns {
		if p.MatchString(text) {
			key = p.String()
			break
		}
	}
	if key == "" {
		key = kindOf(err)
	}
	l.mu.Lock()
	if k, ok := l.kinds[key]; ok {
		k.repeats++
		l.mu.Unlock()
		return
	}
	if len(l.kinds) >= MaxKinds || l.closed {
		l.other++
		l.mu.Unlock()
		return
	}
	l.kinds[key] = &kind{first: text}
	l.mu.Unlock()
	l.log.Error("handler error", "error", err)
}

// kindOf is the handler that returned err and the text of err's innermost
// cause, numbers masked.
func kindOf(err error) string {
	handler := ""
	var he *serve.Error
	if errors.As(err, &he) {
		handler = he.Handler + ": "
	}
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(err) {
		err = u
	}
	return handler + digits.ReplaceAllString(err.Error(), "N")
}

var digits = regexp.MustCompile(`[0-9]+`)

func (l *Log) run() {
	defer close(l.done)
	t := time.NewTicker(l.window)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.report()
		case <-l.stop:
			l.report()
			return
		}
	}
}

// report logs the repeats of the window that ends and starts a new one.
func (l *Log) report() {
	l.mu.Lock()
	kinds, other := l.kinds, l.other
	l.kinds, l.other = map[string]*kind{}, 0
	l.mu.Unlock()
	for key, k := range kinds {
		if k.repeats > 0 {
			l.log.Error("handler errors repeated", "count", k.repeats, "kind", key, "first", k.first, "window", l.window)
		}
	}
	if other > 0 {
		l.log.Error("handler errors repeated", "count", other, "kind", "other", "window", l.window)
	}
}

// Close reports the repeats counted and stops the log.
func (l *Log) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	if l.enabled && l.window > 0 {
		close(l.stop)
	}
	<-l.done
}

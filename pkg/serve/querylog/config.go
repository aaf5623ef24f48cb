package querylog

import (
	"errors"
	"fmt"
	"slices"
)

// Config is the query log's configuration: the queryLog block of dnsd's
// DNSDConfig (flag --query-log turns it on).
type Config struct {
	// Enabled turns the query log on (default off).
	Enabled bool `json:"enabled"`
	// Output is where the lines go: "stdout" (default), "stderr" or a
	// file, appended to (relative to the config file).
	Output string `json:"output"`
	// Classes are the rcode classes logged, as CoreDNS's log plugin names
	// them: all (default), success (NOERROR with records), denial
	// (NXDOMAIN, and NOERROR without records: NODATA) and error
	// (everything else: SERVFAIL, REFUSED, FORMERR, ...).
	Classes []string `json:"classes"`
	// Namespaces, when set, log only the queries of pods of these
	// namespaces (clients that are no known pod are then left out).
	Namespaces []string `json:"namespaces"`
	// Sample logs one query in this many (default 1: every query); the
	// class and namespace filters apply to the sampled ones.
	Sample int `json:"sample"`
	// Buffer is the number of lines queued for the writer (default 16384).
	// Serving never waits for the writer: a line that finds the queue full
	// is dropped and counted in poddns_querylog_dropped_total.
	Buffer int `json:"buffer"`
}

// Defaults.
const (
	DefaultOutput = "stdout"
	DefaultBuffer = 16384
)

// The rcode classes.
const (
	ClassAll     = "all"
	ClassSuccess = "success"
	ClassDenial  = "denial"
	ClassError   = "error"
)

// Defaults returns the query log's defaults: off, every query, to stdout.
func Defaults() Config {
	return Config{Output: DefaultOutput, Classes: []string{ClassAll}, Sample: 1, Buffer: DefaultBuffer}
}

// Paths are the files the configuration names (the output file).
func (c *Config) Paths() []*string {
	if c.Output == "stdout" || c.Output == "stderr" {
		return nil
	}
	return []*string{&c.Output}
}

// Validate checks c without opening anything.
func (c Config) Validate() error {
	var errs []error
	if c.Output == "" {
		errs = append(errs, errors.New("queryLog: output is empty (stdout, stderr or a file)"))
	}
	if len(c.Classes) == 0 {
		errs = append(errs, errors.New("queryLog: classes is empty (all, success, denial, error)"))
	}
	for _, cl := range c.Classes {
		if !slices.Contains([]string{ClassAll, ClassSuccess, ClassDenial, ClassError}, cl) {
			errs = append(errs, fmt.Errorf("queryLog: class %q: want all, success, denial or error", cl))
		}
	}
	if c.Sample < 1 {
		errs = append(errs, fmt.Errorf("queryLog: sample %d: want 1 (every query) or more", c.Sample))
	}
	if c.Buffer < 1 {
		errs = append(errs, fmt.Errorf("queryLog: buffer %d: want at least 1", c.Buffer))
	}
	for _, ns := range c.Namespaces {
		if ns == "" {
			errs = append(errs, errors.New("queryLog: an empty namespace"))
		}
	}
	return errors.Join(errs...)
}

package cache

import (
	"errors"
	"fmt"
	"time"

	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/serve"
)

// Config is the cache's configuration: the cache block of dnsd's
// DNSDConfig. Defaults returns the values of the fields a file leaves out
// (CoreDNS's); every value is taken as it is, zero included.
type Config struct {
	// Disabled leaves the cache out of dnsd's chain.
	Disabled bool `json:"disabled,omitempty"`
	// Capacity is the entries of each of the success and denial caches
	// (default 9984, at least 1024), rounded down to a multiple of 256.
	Capacity int `json:"capacity"`
	// SuccessTTL caps the TTL of positive answers (default 1h).
	SuccessTTL configfile.Duration `json:"successTTL"`
	// DenialTTL caps the TTL of NXDOMAIN and NODATA (default 30m).
	DenialTTL configfile.Duration `json:"denialTTL"`
	// MinTTL floors both (default 5s; 0: no floor).
	MinTTL configfile.Duration `json:"minTTL"`
	// ServfailTTL is how long SERVFAIL is cached (default 5s, at most 5m;
	// 0: not cached).
	ServfailTTL configfile.Duration `json:"servfailTTL"`
	// Prefetch refreshes entries hit this many times, without a gap longer
	// than PrefetchWindow, before they expire; 0 (default) turns prefetch
	// off.
	Prefetch int `json:"prefetch"`
	// PrefetchWindow is the longest gap between the hits of a popular
	// entry (default 1m).
	PrefetchWindow configfile.Duration `json:"prefetchWindow"`
	// PrefetchPercent is the part of its TTL, 10 to 90 percent (default
	// 10), an entry has left when it is refreshed.
	PrefetchPercent int `json:"prefetchPercent"`
	// ServeStale serves expired answers for this long when the next handler
	// fails (RFC 8767); 0 (default) turns it off.
	ServeStale configfile.Duration `json:"serveStale"`
	// StaleTTL is the TTL of a stale answer (default 30s, RFC 8767's).
	StaleTTL configfile.Duration `json:"staleTTL"`
}

// Defaults returns CoreDNS's cache settings.
func Defaults() Config {
	return Config{
		Capacity:        DefaultCapacity,
		SuccessTTL:      configfile.Duration(DefaultSuccessMaxTTL),
		DenialTTL:       configfile.Duration(DefaultDenialMaxTTL),
		MinTTL:          configfile.Duration(DefaultMinTTL),
		ServfailTTL:     configfile.Duration(DefaultServfailTTL),
		PrefetchWindow:  configfile.Duration(DefaultPrefetchWindow),
		PrefetchPercent: DefaultPrefetchPercent,
		StaleTTL:        configfile.Duration(DefaultStaleTTL),
	}
}

// Validate checks c without building anything.
func (c Config) Validate() error {
	var errs []error
	if c.Capacity < MinCapacity {
		errs = append(errs, fmt.Errorf("cache: capacity %d is below %d", c.Capacity, MinCapacity))
	}
	for _, d := range []struct {
		name string
		d    configfile.Duration
	}{{"successTTL", c.SuccessTTL}, {"denialTTL", c.DenialTTL}, {"minTTL", c.MinTTL}, {"servfailTTL", c.ServfailTTL},
		{"prefetchWindow", c.PrefetchWindow}, {"serveStale", c.ServeStale}, {"staleTTL", c.StaleTTL}} {
		if d.d < 0 {
			errs = append(errs, fmt.Errorf("cache: %s: %s is negative", d.name, d.d))
		}
	}
	if c.MinTTL > c.SuccessTTL || c.MinTTL > c.DenialTTL {
		errs = append(errs, fmt.Errorf("cache: minTTL %s is above successTTL %s or denialTTL %s", c.MinTTL, c.SuccessTTL, c.DenialTTL))
	}
	if c.ServfailTTL.D() > MaxServfailTTL {
		errs = append(errs, fmt.Errorf("cache: servfailTTL %s is above %s", c.ServfailTTL, MaxServfailTTL))
	}
	if c.Prefetch < 0 {
		errs = append(errs, errors.New("cache: prefetch is negative"))
	}
	if c.PrefetchPercent < 10 || c.PrefetchPercent > 90 {
		errs = append(errs, fmt.Errorf("cache: prefetchPercent %d is outside 10..90", c.PrefetchPercent))
	}
	return errors.Join(errs...)
}

// Deps are what the cache is given besides its configuration.
type Deps struct {
	// Next answers what the cache does not have.
	Next serve.Handler
	// Metrics, if set, receive the cache's metrics; make them once with
	// NewMetrics: they outlive the caches a reload replaces.
	Metrics *Metrics
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

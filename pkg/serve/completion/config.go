package completion

import (
	"errors"
	"fmt"

	"github.com/poddns/poddns/pkg/nodeprofile"
	"github.com/poddns/poddns/pkg/resolvconf"
	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/store"
)

// Config is the handler's configuration: the completion block of dnsd's
// DNSDConfig.
type Config struct {
	// Enabled turns completion on or off; left out, it is on when
	// NodeProfile is set. It cannot be on without a node profile.
	Enabled *bool `json:"enabled,omitempty"`
	// NodeProfile is the path of the node profile (kind NodeProfile, the
	// webhook's --profile format) the pods' resolv.conf is derived with.
	NodeProfile string `json:"nodeProfile,omitempty"`
}

// Defaults returns the configuration of completion: off (no node profile).
func Defaults() Config { return Config{} }

// On reports whether completion is on.
func (c Config) On() bool { return c.NodeProfile != "" && (c.Enabled == nil || *c.Enabled) }

// Paths are the files c names.
func (c *Config) Paths() []*string { return []*string{&c.NodeProfile} }

// Validate checks c without reading the node profile (New reads it).
// Enabled without NodeProfile is for the caller to check: a profile may
// come from elsewhere (Deps.Profile).
func (c Config) Validate() error { return nil }

// Profile reads the node profile over the built-in defaults, as the
// webhook's --profile does. A profile whose node resolv.conf cannot be
// read is an error: every pod's resolv.conf would be unknown.
func (c Config) Profile() (*resolvconf.NodeProfile, error) {
	f, err := nodeprofile.ReadFile(c.NodeProfile)
	if err != nil {
		return nil, err
	}
	nc := nodeprofile.Defaults()
	f.Apply(&nc)
	p, err := resolvconf.NewNodeProfile(nc)
	if err == nil {
		err = p.HostError()
	}
	if err != nil {
		return nil, fmt.Errorf("node profile %s: %w", c.NodeProfile, err)
	}
	return p, nil
}

// Deps are what the handler is given besides its configuration.
type Deps struct {
	// Store holds the pods, indexed by IP. Required.
	Store Source
	// Next answers the asked name and every name of the walk.
	Next serve.Handler
	// Metrics counts saved queries; nil means a counter of the handler's
	// own, registered nowhere. Make it once with NewMetrics: it outlives the
	// handlers a reload replaces.
	Metrics *Metrics
	// Profile is the node profile when c names no file (dnsd's node-local
	// mode reads it from the node's kubelet configuration).
	Profile *resolvconf.NodeProfile
}

// New reads the node profile c names (else takes d.Profile) and returns
// the handler.
func New(c Config, d Deps) (*Completion, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if d.Store == nil {
		return nil, errors.New("completion: no store")
	}
	p := d.Profile
	if c.NodeProfile != "" || p == nil {
		var err error
		if p, err = c.Profile(); err != nil {
			return nil, err
		}
	}
	m := d.Metrics
	if m == nil {
		m, _ = NewMetrics(nil)
	}
	return &Completion{Next: d.Next, profile: p, store: d.Store, m: m, cache: map[*store.Pod]*podResolv{}}, nil
}

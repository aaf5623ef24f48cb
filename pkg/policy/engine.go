package policy

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/poddns/poddns/pkg/nodepool"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// GlobalMode overrides the policies' own modes for a whole engine: the
// webhook's configuration sets it.
type GlobalMode string

const (
	// GlobalPerPolicy lets every policy act in its own mode (the default).
	GlobalPerPolicy GlobalMode = "per-policy"
	// GlobalEnforce makes every policy enforce, audit ones included.
	GlobalEnforce GlobalMode = "enforce"
	// GlobalAudit makes every policy audit: no pod is changed.
	GlobalAudit GlobalMode = "audit"
)

// ParseGlobalMode checks a global mode given as text; "" is per-policy.
func ParseGlobalMode(s string) (GlobalMode, error) {
	switch m := GlobalMode(s); m {
	case "":
		return GlobalPerPolicy, nil
	case GlobalPerPolicy, GlobalEnforce, GlobalAudit:
		return m, nil
	}
	return "", fmt.Errorf("unknown mode %q: want %s, %s or %s", s, GlobalEnforce, GlobalAudit, GlobalPerPolicy)
}

// EngineOptions configure an Engine.
type EngineOptions struct {
	// Profile is the node profile that previews, limits and None synthesis
	// are computed against. Required unless Pools is given.
	Profile *resolvconf.NodeProfile
	// Pools, when not nil, are the cluster's node pools, each with its own
	// profile: a pod is evaluated on every pool it can land on (see
	// "Node pools" in the package documentation), and Profile is unused.
	Pools *nodepool.Set
	// Mode is the global mode; "" is GlobalPerPolicy.
	Mode GlobalMode
}

// Engine evaluates pods against the current Set. The Set is swapped
// atomically (Swap; reloading is the admission reloader's), so Evaluate
// never blocks and always sees one whole Set. An Engine is safe for
// concurrent use.
type Engine struct {
	set     atomic.Pointer[Set]
	profile *resolvconf.NodeProfile
	pools   *nodepool.Set
	mode    GlobalMode
}

// NewEngine returns an engine serving set (nil is an empty Set).
func NewEngine(set *Set, o EngineOptions) (*Engine, error) {
	if o.Pools != nil {
		o.Profile = o.Pools.Pools()[0].Profile
	}
	if o.Profile == nil {
		return nil, errors.New("new policy engine: no node profile")
	}
	mode, err := ParseGlobalMode(string(o.Mode))
	if err != nil {
		return nil, fmt.Errorf("new policy engine: %w", err)
	}
	if set == nil {
		set = &Set{}
	}
	e := &Engine{profile: o.Profile, pools: o.Pools, mode: mode}
	e.set.Store(set)
	return e, nil
}

// Set returns the Set in use.
func (e *Engine) Set() *Set { return e.set.Load() }

// Mode returns the global mode.
func (e *Engine) Mode() GlobalMode { return e.mode }

// Profile returns the node profile; with node pools, the first pool's.
func (e *Engine) Profile() *resolvconf.NodeProfile { return e.profile }

// Pools returns the node pools; nil when the engine has one profile.
func (e *Engine) Pools() *nodepool.Set { return e.pools }

// Swap makes s the Set in use (nil is an empty Set).
func (e *Engine) Swap(s *Set) {
	if s == nil {
		s = &Set{}
	}
	e.set.Store(s)
}

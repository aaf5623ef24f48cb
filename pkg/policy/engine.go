package policy

import (
	"errors"
	"fmt"
	"sync/atomic"

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
	// are computed against. Required.
	Profile *resolvconf.NodeProfile
	// Mode is the global mode; "" is GlobalPerPolicy.
	Mode GlobalMode
}

// Engine evaluates pods against the current Set. The Set is swapped
// atomically on reload, so Evaluate never blocks and always sees one whole
// Set. An Engine is safe for concurrent use.
type Engine struct {
	set            atomic.Pointer[Set]
	profile        *resolvconf.NodeProfile
	mode           GlobalMode
	reloads        atomic.Uint64
	reloadFailures atomic.Uint64
	lastErr        atomic.Pointer[error]
}

// NewEngine returns an engine serving set (nil is an empty Set).
func NewEngine(set *Set, o EngineOptions) (*Engine, error) {
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
	e := &Engine{profile: o.Profile, mode: mode}
	e.set.Store(set)
	return e, nil
}

// Set returns the Set in use.
func (e *Engine) Set() *Set { return e.set.Load() }

// Mode returns the global mode.
func (e *Engine) Mode() GlobalMode { return e.mode }

// Profile returns the node profile.
func (e *Engine) Profile() *resolvconf.NodeProfile { return e.profile }

// Swap makes s the Set in use (nil is an empty Set).
func (e *Engine) Swap(s *Set) {
	if s == nil {
		s = &Set{}
	}
	e.set.Store(s)
}

// Reload loads paths (see Load) and swaps the result in. On error the Set in
// use stays, the failure is counted (ReloadFailures) and remembered
// (LastReloadError), and the error is returned for the caller to log.
func (e *Engine) Reload(paths ...string) error {
	e.reloads.Add(1)
	s, err := Load(paths...)
	if err != nil {
		e.reloadFailures.Add(1)
		err = fmt.Errorf("reload policies (keeping the %d policies in use): %w", e.Set().Len(), err)
		e.lastErr.Store(&err)
		return err
	}
	e.Swap(s)
	e.lastErr.Store(nil)
	return nil
}

// Reloads returns how many reloads were attempted.
func (e *Engine) Reloads() uint64 { return e.reloads.Load() }

// ReloadFailures returns how many reloads failed since the engine was made.
func (e *Engine) ReloadFailures() uint64 { return e.reloadFailures.Load() }

// LastReloadError returns the error of the last reload, nil if it succeeded
// or none was tried.
func (e *Engine) LastReloadError() error {
	if p := e.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

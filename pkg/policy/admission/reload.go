package admission

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"

	"github.com/poddns/poddns/pkg/policy"
)

// DefaultReloadDelay is how long a Reloader waits after the last change it
// sees before it reloads: kubelet's ConfigMap update is a burst of events
// (a new timestamped directory, a ..data_tmp link renamed over ..data, the
// old directory removed).
const DefaultReloadDelay = 250 * time.Millisecond

// Reloader reloads an Engine's policies when the files change. It watches the
// directories of Paths (a file's parent directory, a directory itself) with
// fsnotify, so it sees a ConfigMap volume's atomic ..data symlink swap, and
// also reloads every Resync as a safety net. A failed reload keeps the
// policies in use (Engine.Reload), is logged and counted, and does not stop
// the Reloader. It is a controller-runtime Runnable that needs no leader
// election.
type Reloader struct {
	Engine *policy.Engine
	Paths  []string
	// Metrics are updated when set.
	Metrics *Metrics
	Log     logr.Logger
	// Delay debounces bursts of events (DefaultReloadDelay when 0).
	Delay time.Duration
	// Resync reloads periodically when > 0.
	Resync time.Duration
	// OnReload, when set, is called after every reload attempt (tests).
	OnReload func(error)

	failures int // reloads failed so far, for the log
}

// NeedLeaderElection reports false: every replica serves admissions.
func (r *Reloader) NeedLeaderElection() bool { return false }

// watchDirs returns the directories to watch for paths.
func watchDirs(paths []string) []string {
	var dirs []string
	for _, p := range paths {
		d := p
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			d = filepath.Dir(p)
		}
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// Start watches until ctx ends.
func (r *Reloader) Start(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	for _, d := range watchDirs(r.Paths) {
		if err := w.Add(d); err != nil {
			return err
		}
	}
	delay := r.Delay
	if delay <= 0 {
		delay = DefaultReloadDelay
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var resync <-chan time.Time
	if r.Resync > 0 {
		t := time.NewTicker(r.Resync)
		defer t.Stop()
		resync = t.C
	}
	// The files may have changed between the first load and the start of
	// the watch (the manager starts this Runnable after its caches sync).
	r.reload(true)
	r.Log.Info("watching policies", "paths", r.Paths)
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			timer.Reset(delay)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			r.Log.Error(err, "policy watch error")
			timer.Reset(delay)
		case <-timer.C:
			r.reload(false)
		case <-resync:
			r.reload(true)
		}
	}
}

// reload loads the policies again (policy.Load) and swaps them in; a bad
// version keeps the policies in use, and is counted and logged. A periodic
// reload that succeeds logs only at debug level.
func (r *Reloader) reload(periodic bool) {
	set, err := policy.Load(r.Paths...)
	if err != nil {
		err = fmt.Errorf("reload policies (keeping the %d policies in use): %w", r.Engine.Set().Len(), err)
		r.failures++
	} else {
		r.Engine.Swap(set)
	}
	if r.Metrics != nil {
		r.Metrics.ObserveReload(err, r.Engine.Set().Len())
	}
	if err != nil {
		r.Log.Error(err, "policy reload failed; keeping the policies in use", "failures", r.failures)
	} else {
		log := r.Log
		if periodic {
			log = log.V(1)
		}
		log.Info("policies reloaded", "policies", r.Engine.Set().Len(), "periodic", periodic)
	}
	if r.OnReload != nil {
		r.OnReload(err)
	}
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/poddns/poddns/pkg/memlimit"
	"github.com/poddns/poddns/pkg/serve/daemon"
)

// run is dnsd: it parses args, starts serving, and handles signals until a
// shutdown. It returns the exit status.
func run(ctx context.Context, args []string, stderr io.Writer, sigs <-chan os.Signal) int {
	f, err := parseArgs(args, stderr)
	if err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		var ae *argsError
		if errors.As(err, &ae) {
			fmt.Fprintf(stderr, "dnsd: %v\n", err)
		}
		return 2
	}
	cfg, err := f.load()
	if err != nil {
		fmt.Fprintf(stderr, "dnsd: %v\n", err)
		return 2
	}
	level := new(slog.LevelVar)
	lv, _ := daemon.ParseLogLevel(cfg.LogLevel)
	level.Set(lv)
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})) // as the webhook's
	// client-go logs through klog: send it to the same structured log.
	klog.SetSlogLogger(log.With("component", "client-go"))
	// The Go heap sized to the container (GOMEMLIMIT from its memory
	// limit; see pkg/memlimit). A limit that cannot be read leaves Go's
	// default: serving DNS matters more.
	if r, err := memlimit.Set(memlimit.Options{}); err != nil {
		log.Error("memory limit not applied", "error", err)
	} else if r.Source != "" {
		log.Info("Go memory limit", "limit", r.Limit, "source", r.Source, "softLimit", r.SoftLimit)
	}

	reg := prometheus.NewRegistry()
	d, err := daemon.New(cfg, daemon.Options{Logger: log, Registry: reg})
	if err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	if err := d.Start(); err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "poddns", Subsystem: "config", Name: "reloads_total",
		Help: "Reloads of the configuration (SIGHUP or a changed config or objects file), by result: applied or refused (the last good configuration keeps serving)."}, []string{"result"})
	reloads.WithLabelValues("applied")
	reloads.WithLabelValues("refused")
	reg.MustRegister(reloads)
	changed := make(chan struct{}, 1)
	if every := cfg.Reload.D(); every > 0 {
		stop := make(chan struct{})
		defer close(stop)
		go watchFiles(stop, changed, every, append([]string{f.config, cfg.Source.File}, cfg.Forward.CAFiles()...)...)
	}
	reload := func(why string) {
		newCfg, err := f.load()
		if err == nil {
			err = d.Reload(newCfg)
		}
		if err != nil {
			reloads.WithLabelValues("refused").Inc()
			log.Error("reload failed, keeping the last good configuration", "trigger", why, "error", err)
			return
		}
		reloads.WithLabelValues("applied").Inc()
		if l, err := daemon.ParseLogLevel(newCfg.LogLevel); err == nil {
			level.Set(l)
		}
		log.Info("reloaded", "config", f.config, "trigger", why)
	}
	for {
		select {
		case <-ctx.Done():
			d.Shutdown(0)
			return 0
		case <-changed:
			reload("file changed")
		case err := <-d.Failed():
			log.Error("listener stopped", "error", err)
			d.Shutdown(0)
			return 1
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload("SIGHUP")
				continue
			}
			log.Info("shutting down", "signal", sig.String(), "lameduck", d.Lameduck().String())
			done := make(chan struct{})
			go func() { d.Shutdown(d.Lameduck()); close(done) }()
			select {
			case <-done:
			case <-sigs:
				log.Info("second signal, stopping now")
			}
			return 0
		}
	}
}

// watchFiles polls the files (empty names skipped) every interval, reading
// each through its path so that a ConfigMap mount's ..data symlink swap is
// seen, and signals changed when the content of any differs from the last
// seen (a missing file counts as empty content: its return is a change).
// It stops when stop closes.
func watchFiles(stop <-chan struct{}, changed chan<- struct{}, every time.Duration, files ...string) {
	read := func() [][]byte {
		var out [][]byte
		for _, f := range files {
			if f == "" {
				continue
			}
			b, _ := os.ReadFile(f)
			out = append(out, b)
		}
		return out
	}
	last := read()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := read()
		if slices.EqualFunc(now, last, bytes.Equal) {
			continue
		}
		last = now
		select {
		case changed <- struct{}{}:
		default: // a reload is pending: it reads the newest files
		}
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"

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

	d, err := daemon.New(cfg, daemon.Options{Logger: log, Registry: prometheus.NewRegistry()})
	if err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	if err := d.Start(); err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	for {
		select {
		case <-ctx.Done():
			d.Shutdown(0)
			return 0
		case err := <-d.Failed():
			log.Error("listener stopped", "error", err)
			d.Shutdown(0)
			return 1
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				newCfg, err := f.load()
				if err == nil {
					err = d.Reload(newCfg)
				}
				if err != nil {
					log.Error("reload failed, keeping the last good configuration", "error", err)
					continue
				}
				if l, err := daemon.ParseLogLevel(newCfg.LogLevel); err == nil {
					level.Set(l)
				}
				log.Info("reloaded", "config", f.config)
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

// Package promopts gives poddns's Prometheus metrics their options: the
// namespace poddns, written once here, under a subsystem per component
// (DESIGN.md's conventions). Each metric's name, help text and labels stay
// where the metric is registered, next to what it counts.
//
// It exists so that the namespace is not typed again in every package that
// registers metrics, and so that registering a package's collectors is one
// call. promlint runs over every registry in the tests of the programs'
// packages (daemon, admission, nodesetup).
package promopts

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespace is the namespace of every poddns metric.
const Namespace = "poddns"

// Name is the full name of metric name of subsystem: poddns_<subsystem>_<name>.
func Name(subsystem, name string) string { return prometheus.BuildFQName(Namespace, subsystem, name) }

// Counter returns the options of counter name of subsystem.
func Counter(subsystem, name, help string) prometheus.CounterOpts {
	return prometheus.CounterOpts{Namespace: Namespace, Subsystem: subsystem, Name: name, Help: help}
}

// Gauge returns the options of gauge name of subsystem.
func Gauge(subsystem, name, help string) prometheus.GaugeOpts {
	return prometheus.GaugeOpts{Namespace: Namespace, Subsystem: subsystem, Name: name, Help: help}
}

// Histogram returns the options of histogram name of subsystem.
func Histogram(subsystem, name, help string, buckets []float64) prometheus.HistogramOpts {
	return prometheus.HistogramOpts{Namespace: Namespace, Subsystem: subsystem, Name: name, Help: help, Buckets: buckets}
}

// Register registers cs with reg, nothing when reg is nil (a component's
// own metrics, in tests); the first error stops it.
func Register(reg prometheus.Registerer, subsystem string, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("%s: register metrics: %w", subsystem, err)
		}
	}
	return nil
}

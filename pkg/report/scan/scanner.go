package scan

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"

	"github.com/poddns/poddns/pkg/report"
)

// Options configure a Scanner. Clients and Checker are required.
type Options struct {
	Clients *Clients
	// Checker compares pods; its Engine's policy set is watched for
	// changes, and its Owners are replaced at each scan.
	Checker *report.Checker
	// Interval is the time between scans (0: scan only when the policies
	// change, and once at start).
	Interval time.Duration
	// PolicyPoll is how often the engine is checked for a new policy set,
	// which starts a scan at once (0: every 2 s).
	PolicyPoll time.Duration
	// PageSize is the limit of each list request (0: DefaultPageSize).
	PageSize int64
	// MaxResults and MaxBytes bound one report (report.PolicyReportOptions).
	MaxResults, MaxBytes int
	// Metrics are updated when set.
	Metrics *Metrics
	Log     logr.Logger
	// Now is the clock of the results' timestamps (nil: time.Now).
	Now func() time.Time
	// Lease, when set, makes one replica at a time scan (leader election
	// through the scan's clients); nil: this one always scans.
	Lease *Lease
}

// Scanner keeps the policy reports of a cluster. It is a controller-runtime
// Runnable that runs on every replica and elects the one that scans itself
// (Options.Lease).
type Scanner struct {
	o      Options
	lister Lister
}

// New returns a scanner.
func New(o Options) (*Scanner, error) {
	if o.Clients == nil || o.Checker == nil || o.Checker.Engine == nil {
		return nil, errors.New("report scanner: no clients or no checker")
	}
	if o.PolicyPoll <= 0 {
		o.PolicyPoll = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Scanner{o: o, lister: Lister{Client: o.Clients.Kube, PageSize: o.PageSize}}, nil
}

// NeedLeaderElection reports false: the scanner runs on every replica and
// elects the one that scans itself, so that a lost lease stops the scan,
// not the webhook.
func (s *Scanner) NeedLeaderElection() bool { return false }

// Start runs the scans until ctx ends; with a Lease, only while this
// replica holds it, trying again to acquire it when it is lost.
func (s *Scanner) Start(ctx context.Context) error {
	if s.o.Lease == nil {
		s.run(ctx)
		return nil
	}
	le, err := s.o.Lease.elector(s.o.Clients, func(ctx context.Context) {
		s.o.Log.Info("leading: scanning")
		s.run(ctx)
	})
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		le.Run(ctx) // returns when the lease is lost or ctx ends
		if ctx.Err() == nil {
			s.o.Log.Info("lease lost: scanning stops until it is acquired again")
		}
	}
	return nil
}

// run scans at once, then every Interval and whenever the policy set
// changes, until ctx ends. A failed scan is logged and counted; the next
// one starts at the next tick.
func (s *Scanner) run(ctx context.Context) {
	log := s.o.Log
	poll := time.NewTicker(s.o.PolicyPoll)
	defer poll.Stop()
	var tick <-chan time.Time
	if s.o.Interval > 0 {
		t := time.NewTicker(s.o.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		set := s.o.Checker.Engine.Set()
		st, err := s.Scan(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Error(err, "report scan failed", "pods", st.Pods)
		} else {
			log.Info("report scan done", "pods", st.Pods, "differ", st.Differ, "namespaces", st.Namespaces,
				"reports", st.Reports, "writes", st.Writes, "format", st.Format, "seconds", st.Duration.Seconds())
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick:
				break wait
			case <-poll.C:
				if s.o.Checker.Engine.Set() != set {
					log.Info("policies changed: scanning")
					break wait
				}
			}
		}
	}
}

// Stats describe one scan.
type Stats struct {
	Pods, Differ, Namespaces int
	// Reports is the number of reports wanted, Writes the requests made
	// to create, update or delete them.
	Reports, Writes int
	// Format is the report API written ("" when the cluster has none).
	Format   string
	Duration time.Duration
}

// Scan compares every running pod with the policies and writes the
// reports, namespace by namespace.
func (s *Scanner) Scan(ctx context.Context) (Stats, error) {
	start := time.Now()
	st, err := s.scan(ctx)
	st.Duration = time.Since(start)
	if m := s.o.Metrics; m != nil {
		result := ScanSuccess
		if err != nil {
			result = ScanError
		}
		m.Scans.WithLabelValues(result).Inc()
		m.Duration.Observe(st.Duration.Seconds())
	}
	return st, err
}

func (s *Scanner) scan(ctx context.Context) (Stats, error) {
	var st Stats
	format, err := Detect(s.o.Clients.Discovery)
	if err != nil {
		return st, err
	}
	nss, err := s.lister.Namespaces(ctx)
	if err != nil {
		return st, err
	}
	owners, err := s.lister.Owners(ctx)
	if err != nil {
		return st, err
	}
	c := s.o.Checker
	c.Owners = owners
	var have existing
	if format != nil {
		st.Format = format.APIVersion() + " " + format.Kind
		if have, err = s.lister.listReports(ctx, s.o.Clients.Dynamic, *format); err != nil {
			return st, err
		}
	}
	names := make([]string, 0, len(nss))
	for ns := range nss {
		names = append(names, ns)
	}
	sort.Strings(names)
	outOf := map[string]int{}
	inSet := map[string]bool{}
	for _, info := range c.Engine.Set().Policies() {
		inSet[info.Name] = true
	}
	var errs []error
	now := s.o.Now().Unix()
	for _, ns := range names {
		var results []report.Encoded
		var encErr error
		err := s.lister.EachPod(ctx, ns, func(p *corev1.Pod) {
			r := c.Check(p, nss[ns])
			st.Pods++
			if r.Differs {
				st.Differ++
			}
			for _, pr := range r.Policies {
				if pr.Result == report.ResultFail && inSet[pr.Policy] {
					outOf[pr.Policy]++
				}
			}
			enc, err := report.Encode(&r)
			if err != nil {
				encErr = err
			}
			results = append(results, enc...)
		})
		if err == nil {
			err = encErr
		}
		if err != nil {
			return st, err
		}
		st.Namespaces++
		if format == nil {
			continue
		}
		w := newWriter(s.o.Clients.Dynamic, *format, ns, have[ns])
		n, err := report.EachReport(ns, results, report.PolicyReportOptions{
			Format: *format, MaxResults: s.o.MaxResults, MaxBytes: s.o.MaxBytes, Timestamp: now,
		}, func(d report.Doc) error { return w.write(ctx, d) })
		if err != nil {
			return st, err
		}
		st.Reports += n
		err = w.finish(ctx)
		st.Writes += w.requests
		if err != nil {
			errs = append(errs, err)
		}
	}
	if m := s.o.Metrics; m != nil {
		m.OutOfPolicy.Reset()
		for name := range inSet {
			m.OutOfPolicy.WithLabelValues(name).Set(float64(outOf[name]))
		}
		m.Scanned.Set(float64(st.Pods))
	}
	if len(errs) > 0 {
		return st, fmt.Errorf("write reports: %w", errors.Join(errs...))
	}
	return st, nil
}

// Report lists the cluster and returns what `webhook report --kubeconfig`
// prints; nothing is written.
func Report(ctx context.Context, l *Lister, c *report.Checker) (report.Report, error) {
	nss, err := l.Namespaces(ctx)
	if err != nil {
		return report.Report{}, err
	}
	owners, err := l.Owners(ctx)
	if err != nil {
		return report.Report{}, err
	}
	c.Owners = owners
	var b report.Builder
	err = l.EachPod(ctx, "", func(p *corev1.Pod) {
		b.Add(c.Check(p, nss[p.Namespace]))
	})
	if err != nil {
		return report.Report{}, err
	}
	return b.Report(), nil
}

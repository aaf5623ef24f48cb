package main

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/poddns/poddns/pkg/policy"
	padmission "github.com/poddns/poddns/pkg/policy/admission"
	"github.com/poddns/poddns/pkg/report"
	"github.com/poddns/poddns/pkg/report/scan"
)

// reportLeaseName is the Lease of the replica that scans.
const reportLeaseName = "poddns-webhook-report"

// bindReportScanFlags defines the flags of the background scan.
func bindReportScanFlags(fs *pflag.FlagSet, c *WebhookConfig) {
	fs.DurationVar((*time.Duration)(&c.ReportScanInterval), "report-scan-interval", c.ReportScanInterval.D(),
		"scan the running pods this often (and when the policies change) and keep policy reports per namespace (0: off); one replica scans (leader election)")
	fs.IntVar(&c.ReportScanQPS, "report-scan-qps", c.ReportScanQPS, "the scan's API requests a second, at most")
	fs.StringVar(&c.ReportNamespaceSelector, "report-namespace-selector", c.ReportNamespaceSelector,
		`label selector of the namespaces the webhook is called for, as its MutatingWebhookConfiguration says ("": every namespace)`)
	fs.StringVar(&c.LeaderElectionNamespace, "leader-election-namespace", c.LeaderElectionNamespace,
		"namespace of the Lease that elects the replica that scans (empty: the in-cluster ServiceAccount's)")
}

func (c *WebhookConfig) validateReportScan() []error {
	var errs []error
	if c.ReportScanInterval < 0 {
		errs = append(errs, fmt.Errorf("reportScanInterval %s is negative", c.ReportScanInterval))
	}
	if c.ReportScanQPS < 1 || c.ReportScanQPS > 1000 {
		errs = append(errs, fmt.Errorf("reportScanQPS %d: want 1 to 1000", c.ReportScanQPS))
	}
	if _, err := labels.Parse(c.ReportNamespaceSelector); err != nil {
		errs = append(errs, fmt.Errorf("reportNamespaceSelector: %w", err))
	}
	return errs
}

// reportScanner returns what makes the scanner once the engine exists, or
// nil when the scan is off.
func (o *serveOptions) reportScanner(cfg *rest.Config, log logr.Logger) func(*policy.Engine) ([]manager.Runnable, error) {
	c := o.cfg
	if c.ReportScanInterval <= 0 {
		return nil
	}
	return func(engine *policy.Engine) ([]manager.Runnable, error) {
		sel, err := labels.Parse(c.ReportNamespaceSelector)
		if err != nil {
			return nil, err
		}
		clients, err := scan.NewClients(cfg, float32(c.ReportScanQPS))
		if err != nil {
			return nil, err
		}
		m, err := scan.NewMetrics(metrics.Registry)
		if err != nil {
			return nil, errors.Join(errors.New("report scan metrics"), err)
		}
		s, err := scan.New(scan.Options{
			Clients: clients,
			Checker: &report.Checker{
				Engine: engine, NamespaceSelector: sel,
				ExcludedNamespaces: append(slices.Clone(padmission.AlwaysExcluded), c.ExcludedNamespaces...),
			},
			Interval: c.ReportScanInterval.D(),
			Lease:    &scan.Lease{Name: reportLeaseName, Namespace: c.LeaderElectionNamespace},
			Metrics:  m,
			Log:      log.WithName("report"),
		})
		if err != nil {
			return nil, err
		}
		log.Info("report scan on", "interval", c.ReportScanInterval.D().String(), "qps", c.ReportScanQPS)
		return []manager.Runnable{s}, nil
	}
}

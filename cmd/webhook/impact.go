package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"

	"github.com/poddns/poddns/pkg/impact"
	"github.com/poddns/poddns/pkg/manifest"
	"github.com/poddns/poddns/pkg/nodeprofile"
	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/report/scan"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// errBreakage is returned by `impact --fail-on breakage` when some lookup
// would break; the report has been written.
var errBreakage = errors.New("some lookups would break")

// impactOptions are the flags of `webhook impact`.
type impactOptions struct {
	logs       []string
	filenames  []string
	kubeconfig string
	live       bool
	timeout    time.Duration
	policies   []string
	current    []string
	proposed   []string
	mode       string
	window     time.Duration
	output     string
	failOn     string
	node       nodeprofile.Options
}

func newImpactCommand(s streams) *cobra.Command {
	var o impactOptions
	cmd := &cobra.Command{
		Use:   "impact --log FILE (-f MANIFESTS | --kubeconfig FILE | --live) (-p CURRENT -p PROPOSED | [--current DIR] --proposed DIR) [-o text|json] [--fail-on breakage]",
		Short: "Replay a dnsd query log through the current and the proposed policies",
		Long: `impact predicts what a policy change does to the lookups pods really make.
It reads dnsd's query log (queryLog, one JSON line per query with the pod that
asked, or a capture in the same shape) and, for every pod in it, rebuilds the
names the application looked up from the wire queries of its search walks,
by the resolv.conf the pod has now (the pod from the manifests through the
current policies on the node profile, as the webhook admits it). Then it
replays each lookup with glibc's and musl's search algorithms through that
file and through the one the pod would get under the proposed policies, with
the log's answers as the oracle of which names exist, and reports per
workload: the lookups that would stop resolving (and with which libc), those
that would resolve to another name, and the wire queries saved.

The pods come from the cluster (--kubeconfig, --live: pods and namespaces
listed in pages of 500) or from manifests. The manifests hold the pods
(kubectl get pods -o yaml, or as created), or
the workloads whose pods are named after them (Deployment web for pods
web-<hash>-<id>), and Namespace documents for the labels the policies select
on. A pod the webhook changed (poddns.io/applied) has the file its fields
give; any other pod gets the current policies. The proposed file is the pod
as it would be created now, as report finds it (its owner's template in the
manifests, or the webhook's changes reverted), through the proposed
policies. -p is given twice, current then proposed; or --current (none: no
policies now) and --proposed, each repeatable.

What the log cannot say is reported, not guessed: a name the log never asked
is taken not to exist and listed as unknown; a NOERROR answer is taken to
carry addresses unless a logged walk went on past it (glibc does that on
NODATA only); lookups dnsd completed itself (completion on) are counted, not
replayed. Concurrent lookups of one pod whose walks interleave cannot be told
apart. The log must hold every query of the pods replayed (queryLog classes
all, sample 1): a sampled or filtered log loses steps and answers.

Exit status: 0; 1 with --fail-on breakage when some lookup would break; 2
when the command fails (bad flags, unreadable log, manifests or policies).`,
		Example: `  webhook impact --log queries.log -f pods.yaml -p policies/ -p proposed/
  webhook impact --log queries.log -f manifests/ --proposed ndots2/ -o json
  webhook impact --log queries.log -f manifests/ --current policies/ --proposed proposed/ --fail-on breakage
  webhook impact --log queries.log --kubeconfig ~/.kube/config --proposed proposed/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(s)
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVar(&o.logs, "log", nil, `dnsd query log file or "-" for stdin; repeatable`)
	fs.StringArrayVarP(&o.filenames, "filename", "f", nil, `manifest file, directory or "-" for stdin; repeatable`)
	// controller-runtime registers its own --kubeconfig on the standard flag set.
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "read the pods and namespaces from this cluster instead of -f (kubeconfig file; --live for $KUBECONFIG, in-cluster, ~/.kube/config)")
	fs.BoolVar(&o.live, "live", false, "read the pods and namespaces from the cluster of $KUBECONFIG, in-cluster or ~/.kube/config instead of -f")
	fs.DurationVar(&o.timeout, "timeout", time.Minute, "give up reading the cluster after this long")
	fs.StringArrayVarP(&o.policies, "policies", "p", nil, "twice: the current policies, then the proposed ones (file or directory)")
	fs.StringArrayVar(&o.current, "current", nil, "current DNSPolicy file or directory; repeatable (none: no policies now)")
	fs.StringArrayVar(&o.proposed, "proposed", nil, "proposed DNSPolicy file or directory; repeatable")
	fs.StringVar(&o.mode, "mode", string(policy.GlobalPerPolicy), "global policy mode of both sets: enforce, audit or per-policy")
	fs.DurationVar(&o.window, "window", impact.DefaultWindow, "longest gap between a reply and the next question of one search walk")
	fs.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	fs.StringVar(&o.failOn, "fail-on", "", `"breakage": exit 1 when some lookup would break`)
	o.node.AddFlags(fs)
	return cmd
}

func (o *impactOptions) run(s streams) error {
	if err := o.check(); err != nil {
		return fmt.Errorf("impact: %w", err)
	}
	profile, warnings, err := o.node.NodeProfile()
	if err != nil {
		return fmt.Errorf("impact: %w", err)
	}
	for _, w := range warnings {
		fmt.Fprintf(s.err, "warning: %s\n", w)
	}
	p := impact.Policies{}
	if len(o.current) > 0 {
		if p.Current, err = o.engine("current", o.current, profile, s.err); err != nil {
			return err
		}
	}
	if p.Proposed, err = o.engine("proposed", o.proposed, profile, s.err); err != nil {
		return err
	}
	var entries []impact.Entry
	for _, name := range o.logs {
		es, err := readLog(name, s.in)
		if err != nil {
			return fmt.Errorf("impact: %w", err)
		}
		entries = append(entries, es...)
	}
	var items []manifest.Item
	var labels map[string]map[string]string
	if o.kubeconfig != "" || o.live {
		items, labels, err = o.listCluster()
	} else {
		items, labels, err = o.readManifests(s.in)
	}
	if err != nil {
		return fmt.Errorf("impact: %w", err)
	}
	r := impact.Analyze(entries, impact.ManifestPods(items, labels, p), impact.Options{Window: o.window})
	if o.output == "json" {
		err = impact.WriteJSON(s.out, r)
	} else {
		err = impact.WriteText(s.out, r)
	}
	if err != nil {
		return err
	}
	if o.failOn == "breakage" && r.Breaks() {
		return errBreakage
	}
	return nil
}

// check validates the flags and sorts -p into current and proposed.
func (o *impactOptions) check() error {
	switch {
	case len(o.logs) == 0:
		return errors.New("no query log: give --log FILE")
	case len(o.filenames) == 0 && o.kubeconfig == "" && !o.live:
		return errors.New("no pods: give -f FILE, -f DIR, -f - or --kubeconfig FILE")
	case len(o.filenames) > 0 && (o.kubeconfig != "" || o.live):
		return errors.New("-f and --kubeconfig/--live are mutually exclusive")
	case len(o.policies) > 0 && (len(o.current) > 0 || len(o.proposed) > 0):
		return errors.New("-p and --current/--proposed are mutually exclusive")
	case len(o.policies) > 0 && len(o.policies) != 2:
		return fmt.Errorf("-p is given twice, current then proposed (got %d)", len(o.policies))
	case len(o.policies) == 2:
		o.current, o.proposed = o.policies[:1], o.policies[1:]
	case len(o.proposed) == 0:
		return errors.New("no proposed policies: give --proposed DIR or -p CURRENT -p PROPOSED")
	}
	if o.output != "text" && o.output != "json" {
		return fmt.Errorf("-o %q: want text or json", o.output)
	}
	if o.failOn != "" && o.failOn != "breakage" {
		return fmt.Errorf("--fail-on %q: want breakage", o.failOn)
	}
	if o.window <= 0 {
		return fmt.Errorf("--window %s: want a positive duration", o.window)
	}
	stdins := 0
	for _, name := range append(append([]string{}, o.logs...), o.filenames...) {
		if name == "-" {
			stdins++
		}
	}
	if stdins > 1 {
		return errors.New(`only one of --log and -f can be "-" (stdin)`)
	}
	return nil
}

func (o *impactOptions) engine(which string, paths []string, profile *resolvconf.NodeProfile, errOut io.Writer) (*policy.Engine, error) {
	po := policyOptions{paths: paths, mode: o.mode}
	e, err := po.engine(profile, nil, errOut)
	if err != nil {
		return nil, fmt.Errorf("impact: %s policies: %w", which, err)
	}
	return e, nil
}

// readLog reads one query log file, or stdin for "-".
func readLog(name string, stdin io.Reader) ([]impact.Entry, error) {
	if name == "-" {
		return impact.ReadLog(stdin, manifest.Stdin)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return impact.ReadLog(f, name)
}

// stdinUnlessLog is stdin for the manifests, or nil when the log took it.
func stdinUnlessLog(logs []string, stdin io.Reader) io.Reader {
	for _, l := range logs {
		if l == "-" {
			return nil
		}
	}
	return stdin
}

// readManifests reads the pods and the namespaces' labels from -f.
func (o *impactOptions) readManifests(stdin io.Reader) ([]manifest.Item, map[string]map[string]string, error) {
	ns, err := readNamespaces(o.filenames, stdinUnlessLog(o.logs, stdin))
	if err != nil {
		return nil, nil, err
	}
	defer ns.close()
	if ns.readErr != nil {
		return nil, nil, ns.readErr
	}
	var items []manifest.Item
	if err := manifest.ReadEach(o.filenames, ns.stdin, func(set *manifest.Set) { items = append(items, set.Pods...) }); err != nil {
		return nil, nil, err
	}
	return items, ns.labels, nil
}

// listPage is the page size of the cluster's lists.
const listPage = 500

// listCluster reads the pods and the namespaces' labels from the cluster,
// in pages.
func (o *impactOptions) listCluster() ([]manifest.Item, map[string]map[string]string, error) {
	cfg, err := restConfig(o.kubeconfig)
	if err != nil {
		return nil, nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	labels, err := (&scan.Lister{Client: cs, PageSize: listPage}).Namespaces(ctx)
	if err != nil {
		return nil, nil, err
	}
	// Pods are listed here rather than with scan.Lister.EachPod, which
	// leaves finished pods out and lends each pod only for its callback:
	// impact keeps every pod.
	var items []manifest.Item
	list := metav1.ListOptions{Limit: listPage}
	for {
		page, err := cs.CoreV1().Pods("").List(ctx, list)
		if err != nil {
			return nil, nil, fmt.Errorf("list pods: %w", err)
		}
		for i := range page.Items {
			pod := &page.Items[i]
			items = append(items, manifest.Item{
				Location:   manifest.Location{File: cfg.Host, Document: len(items) + 1},
				APIVersion: "v1", Kind: "Pod", Name: pod.Name, Namespace: pod.Namespace,
				SpecPath: field.NewPath("spec"), Pod: pod, Owners: pod.OwnerReferences,
			})
		}
		if list.Continue = page.Continue; list.Continue == "" {
			break
		}
	}
	return items, labels, nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/manifest"
	"github.com/poddns/poddns/pkg/nodeprofile"
	padmission "github.com/poddns/poddns/pkg/policy/admission"
	"github.com/poddns/poddns/pkg/render"
	"github.com/poddns/poddns/pkg/report"
	"github.com/poddns/poddns/pkg/report/scan"
)

// errPodsDiffer is returned by report when its output is complete and some
// pods differ from what the policies give them; it has said which.
var errPodsDiffer = errors.New("some pods differ from the policies")

// defaultNamespaceSelector is the namespaceSelector of deploy/'s
// MutatingWebhookConfiguration: the namespaces that opt in.
const defaultNamespaceSelector = "poddns.io/enabled=true"

// reportOptions are the flags of `webhook report`.
type reportOptions struct {
	filenames          []string
	kubeconfig         string
	output             string
	namespaceSelector  string
	excludedNamespaces []string
	node               nodeprofile.Options
	policy             policyOptions
}

func newReportCommand(s streams) *cobra.Command {
	var o reportOptions
	cmd := &cobra.Command{
		Use:   "report -p POLICIES (-f FILE|DIR|- | --kubeconfig FILE) [-o text|json|yaml]",
		Short: "List running pods whose DNS differs from what the policies give them now",
		Long: `report finds the pods whose DNS fields differ from what the current policies
would give them if they were created now (the webhook acts on CREATE only:
after a policy changes or a namespace opts in, running pods keep their old
DNS until they are recreated), grouped by owning workload, with the field
by field difference and the action that fixes it (a rollout restart of the
Deployment, the next run of a CronJob, recreating a bare pod).

A pod is compared with what it would be created as: its workload's pod
template when the workload is known (ReplicaSet to Deployment, Job to
CronJob, through ownerReferences), else the pod with the changes of its
applied policies reverted from the annotation poddns.io/original-dns; never
with its mutated fields taken as its own. A pod the webhook changed without
recording its original fields (an older webhook) and without a known
workload cannot be judged and is listed as such.

Offline (-f), the pods, their workloads (ReplicaSets, Deployments, Jobs,
CronJobs, ...) and Namespaces come from the manifests, e.g.
kubectl get ns,pods,rs,deploy,sts,ds,jobs,cronjobs -A -o yaml. Live
(--kubeconfig), they are listed from the cluster, paged (500 a page), at
most 20 requests a second; nothing is written.

The webhook is called only for pods in namespaces its namespaceSelector
selects (--namespace-selector, deploy/'s by default; "" for every
namespace) and not excluded (--excluded-namespaces, kube-system always).

Exit status: 0 when no pod differs, 1 when some do, 2 when the command fails.`,
		Example: `  kubectl get ns,pods,rs,deploy,sts,ds,jobs,cronjobs -A -o yaml | webhook report -p policies/ -f -`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), s)
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVarP(&o.filenames, "filename", "f", nil, `manifest file, directory or "-" for stdin; repeatable`)
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "read the pods from the cluster of this kubeconfig instead of manifests")
	fs.StringVarP(&o.output, "output", "o", report.FormatText, "output format: text, json or yaml")
	fs.StringVar(&o.namespaceSelector, "namespace-selector", defaultNamespaceSelector, `label selector of the namespaces the webhook is called for ("": every namespace)`)
	fs.StringSliceVar(&o.excludedNamespaces, "excluded-namespaces", []string{"poddns-system"}, "namespaces the webhook never mutates besides kube-system; comma-separated or repeated")
	o.policy.addFlags(fs)
	o.node.AddFlags(fs)
	return cmd
}

func (o *reportOptions) checker(s streams) (*report.Checker, error) {
	if len(o.policy.paths) == 0 {
		return nil, errors.New("no policies: give -p FILE or -p DIR")
	}
	switch o.output {
	case report.FormatText, report.FormatJSON, report.FormatYAML:
	default:
		return nil, fmt.Errorf("unknown output format %q: want text, json or yaml", o.output)
	}
	sel, err := labels.Parse(o.namespaceSelector)
	if err != nil {
		return nil, fmt.Errorf("--namespace-selector: %w", err)
	}
	profile, pools, warnings, err := o.node.Profiles()
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		fmt.Fprintf(s.err, "warning: %s\n", w)
	}
	engine, err := o.policy.engine(profile, pools, s.err)
	if err != nil {
		return nil, err
	}
	return &report.Checker{
		Engine: engine, NamespaceSelector: sel,
		ExcludedNamespaces: append(slices.Clone(padmission.AlwaysExcluded), o.excludedNamespaces...),
	}, nil
}

func (o *reportOptions) run(ctx context.Context, s streams) error {
	if len(o.filenames) == 0 == (o.kubeconfig == "") {
		return errors.New("report: give manifests (-f FILE, -f DIR or -f -) or --kubeconfig, one of them")
	}
	c, err := o.checker(s)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	var rep report.Report
	if o.kubeconfig != "" {
		rep, err = o.live(ctx, c)
	} else {
		rep, err = o.offline(c, s.in)
	}
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := report.Write(s.out, &rep, o.output); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if rep.Differ > 0 {
		return errPodsDiffer
	}
	return nil
}

// offline reads the manifests twice, one document at a time: first the
// Namespaces and the workloads (their pod templates), then the Pods, each
// compared as it is read.
func (o *reportOptions) offline(c *report.Checker, stdin io.Reader) (report.Report, error) {
	in := stdin
	if stdin != nil && slices.Contains(o.filenames, "-") {
		f, err := spoolStdin(stdin)
		if err != nil {
			return report.Report{}, err
		}
		defer f.Close()
		in = f
	}
	owners := report.NewOwners()
	var nss []manifest.Namespace
	err := manifest.ReadEach(o.filenames, in, func(set *manifest.Set) {
		nss = append(nss, set.Namespaces...)
		for _, it := range set.Pods {
			if it.Kind != "Pod" {
				owners.Add(report.Owner{
					Ref:      report.Ref{APIVersion: it.APIVersion, Kind: it.Kind, Namespace: it.Namespace, Name: it.Name, UID: it.Pod.UID},
					Owners:   it.Owners,
					Template: report.SlimPod(it.Pod),
				})
			}
		}
	})
	if err != nil {
		return report.Report{}, manifestErrors(err)
	}
	if f, ok := in.(io.Seeker); ok && in != stdin {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return report.Report{}, fmt.Errorf("rewind spooled stdin: %w", err)
		}
	}
	c.Owners = owners
	nsLabels := render.NamespaceLabels(nss)
	var b report.Builder
	err = manifest.ReadEach(o.filenames, in, func(set *manifest.Set) {
		for _, it := range set.Pods {
			if it.Kind == "Pod" {
				b.Add(c.Check(it.Pod, nsLabels[it.Namespace]))
			}
		}
	})
	if err != nil {
		return report.Report{}, manifestErrors(err)
	}
	return b.Report(), nil
}

func manifestErrors(err error) error {
	bad := configfile.Leaves(err)
	if len(bad) == 1 {
		return bad[0]
	}
	return err
}

// live lists the namespaces, workloads and pods from the cluster, through
// the scan's rate-limited clients.
func (o *reportOptions) live(ctx context.Context, c *report.Checker) (report.Report, error) {
	cfg, err := restConfig(o.kubeconfig)
	if err != nil {
		return report.Report{}, fmt.Errorf("kubeconfig: %w", err)
	}
	clients, err := scan.NewClients(cfg, scan.DefaultQPS)
	if err != nil {
		return report.Report{}, err
	}
	return scan.Report(ctx, &scan.Lister{Client: clients.Kube}, c)
}

package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/manifest"
	"github.com/poddns/poddns/pkg/nodeprofile"
	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/render"
)

// renderOptions are the flags of `webhook render`.
type renderOptions struct {
	filenames []string
	output    string
	node      nodeprofile.Options
	policy    policyOptions
}

func newRenderCommand(s streams) *cobra.Command {
	var o renderOptions
	cmd := &cobra.Command{
		Use:   "render -f FILE|DIR|- [-p POLICIES] [-o text|json] [node profile flags]",
		Short: "Show the resolv.conf each pod in the manifests gets",
		Long: `render reads pods from manifests (Pod, and the pod templates of Deployment,
StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob and
PodTemplate, also inside Lists) and reports for each one what a cluster does
with its DNS settings: the API server's defaulting, validation errors and
warnings and, for a pod it accepts, the /etc/resolv.conf that kubelet and
containerd give it on a node of the given profile, with kubelet's events or
its error.

With -p, the pods first go through the DNS policies as the webhook would
admit them (Namespace documents in the manifests supply the namespace labels
the policies select on): the text output is then a YAML stream of the patched
pods, each preceded by comments saying which policies applied, what they
changed, what audit policies would change, which were skipped and why, and
the resolv.conf; the JSON objects keep the seven keys, which then describe the
patched pod, and add applied, audit, skipped, changed, exempt, policyWarnings and
patchedPod.

The node profile is built from defaults (cluster domain cluster.local,
cluster DNS 10.96.0.10, a typical cloud node's /etc/resolv.conf), then a
--profile or --kubelet-config file, then the kubelet-style flags, later ones
winning.

The manifests are read one document at a time (at most 64 MiB each; a List
is one document) and each pod's report is written as soon as it is made.
With -p, a first pass reads the Namespace documents, which may come after
the pods; stdin is then copied to an unlinked temporary file and read twice.

Exit status: 0 when every pod would run with a resolv.conf, 1 when some pod
would be rejected by the API server or fail in kubelet, 2 when the command
fails (bad flags, unreadable or malformed manifests).`,
		Example: `  webhook render -f testdata/pods/examples.yaml
  webhook render -p testdata/policies -f testdata/pods/
  kubectl get pods -A -o yaml | webhook render -f - -o json
  webhook render -f deploy/ --kubelet-config /var/lib/kubelet/config.yaml
  webhook render -f pod.yaml --cluster-dns 10.96.0.10,fd00::a --resolv-conf=""`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(s)
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVarP(&o.filenames, "filename", "f", nil, `manifest file, directory (its .yaml, .yml and .json files) or "-" for stdin; repeatable`)
	fs.StringVarP(&o.output, "output", "o", "text", "output format: text or json (one object per line)")
	o.policy.addFlags(fs)
	o.node.AddFlags(fs)
	return cmd
}

func (o *renderOptions) run(s streams) error {
	if len(o.filenames) == 0 {
		return errors.New("render: no manifests: give -f FILE, -f DIR or -f -")
	}
	format := render.FormatText
	if len(o.policy.paths) > 0 {
		format = render.FormatPolicyText
	}
	switch o.output {
	case "text":
	case "json":
		format = render.FormatJSON
	default:
		return fmt.Errorf("render: unknown output format %q: want text or json", o.output)
	}
	profile, pools, warnings, err := o.node.Profiles()
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	for _, w := range warnings {
		fmt.Fprintf(s.err, "warning: %s\n", w)
	}
	if pools != nil {
		for _, p := range pools.Pools() {
			for _, n := range render.NodeNotes(p.Profile) {
				fmt.Fprintf(s.err, "node pool %s: %s\n", p.Name, n)
			}
		}
	} else {
		for _, n := range render.NodeNotes(profile) {
			fmt.Fprintln(s.err, n)
		}
	}

	var engine *policy.Engine
	if len(o.policy.paths) > 0 {
		if engine, err = o.policy.engine(profile, pools, s.err); err != nil {
			return fmt.Errorf("render: %w", err)
		}
	}

	// The manifests are read one document at a time and each pod's report
	// is written as soon as it is made: memory is bounded by one document,
	// not by the inputs.
	in := s.in
	var nsLabels map[string]map[string]string
	if engine != nil {
		ns, err := readNamespaces(o.filenames, s.in)
		if err != nil {
			return fmt.Errorf("render: %w", err)
		}
		defer ns.close()
		in, nsLabels = ns.stdin, ns.labels
	}
	rw := render.NewReportWriter(s.out, format)
	var writeErr error
	readErr := manifest.ReadEach(o.filenames, in, func(set *manifest.Set) {
		for _, n := range set.Notes {
			fmt.Fprintf(s.err, "note: %s\n", n)
		}
		for _, item := range set.Pods {
			if writeErr != nil {
				return
			}
			var r render.Report
			if engine != nil {
				r = render.PodWithPolicies(item, engine, nsLabels[item.Namespace])
			} else if pools != nil {
				r = render.PodOnPools(item, pools)
			} else {
				r = render.Pod(item, profile)
			}
			writeErr = rw.Write(&r)
		}
	})
	if writeErr != nil {
		return fmt.Errorf("render: %w", writeErr)
	}
	if rw.Written == 0 && readErr == nil {
		fmt.Fprintln(s.err, "note: no pods in the manifests")
	}
	failed := rw.Failed
	if failed > 0 {
		fmt.Fprintf(s.err, "%d of %d pods would not run: rejected by the API server or failed in kubelet\n", failed, rw.Written)
	}
	if readErr != nil {
		bad := configfile.Leaves(readErr)
		for _, err := range bad {
			fmt.Fprintf(s.err, "error: %v\n", err)
		}
		return fmt.Errorf("render: %d manifest files or documents could not be read", len(bad))
	}
	if failed > 0 {
		return errPodsFailed
	}
	return nil
}

package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/poddns/poddns/pkg/manifest"
	"github.com/poddns/poddns/pkg/nodeprofile"
	"github.com/poddns/poddns/pkg/render"
)

// explainOptions are the flags of `webhook explain`.
type explainOptions struct {
	filenames []string
	pod       string
	node      nodeprofile.Options
	policy    policyOptions
}

func newExplainCommand(s streams) *cobra.Command {
	var o explainOptions
	cmd := &cobra.Command{
		Use:   "explain -p POLICIES -f FILE|DIR|- [--pod [NAMESPACE/]NAME] [node profile flags]",
		Short: "Show how the policies treat a pod, policy by policy",
		Long: `explain reads pods from manifests, as render does, and shows for each one
every policy in the order they apply (priority, then name) with what it did:
why it did not match (which criterion failed), what it changed field by field
(a switch to dnsPolicy None says why), which of the pod's own settings it
kept, what it would change in audit mode, or why it was skipped for this pod.
Then the resulting DNS fields, the admission warnings and the resolv.conf.

Namespace documents in the manifests supply the namespaces' labels; a
namespace without one has only kubernetes.io/metadata.name, as the API server
sets it. --pod picks one pod by name or namespace/name.

Exit status: 0, 1 when some pod would not run (as render), 2 when the command
fails (bad flags or policies, unreadable manifests, no such pod).`,
		Example: `  webhook explain -p testdata/policies -f testdata/pods/ --pod default/web
  kubectl get pod web -o yaml | webhook explain -p policies/ -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(s)
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVarP(&o.filenames, "filename", "f", nil, `manifest file, directory or "-" for stdin; repeatable`)
	fs.StringVar(&o.pod, "pod", "", "explain only this pod: NAME or NAMESPACE/NAME")
	o.policy.addFlags(fs)
	o.node.AddFlags(fs)
	return cmd
}

func (o *explainOptions) run(s streams) error {
	if len(o.filenames) == 0 {
		return errors.New("explain: no manifests: give -f FILE, -f DIR or -f -")
	}
	if len(o.policy.paths) == 0 {
		return errors.New("explain: no policies: give -p FILE or -p DIR")
	}
	profile, pools, warnings, err := o.node.Profiles()
	if err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	for _, w := range warnings {
		fmt.Fprintf(s.err, "warning: %s\n", w)
	}
	engine, err := o.policy.engine(profile, pools, s.err)
	if err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	// Two passes, one document at a time: the first collects the Namespace
	// labels and stops at a bad manifest before anything is written; the
	// second explains each pod as it is read.
	ns, err := readNamespaces(o.filenames, s.in)
	if err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	defer ns.close()
	if ns.readErr != nil {
		return fmt.Errorf("explain: %w", ns.readErr)
	}
	explained, failed := 0, 0
	var writeErr error
	readErr := manifest.ReadEach(o.filenames, ns.stdin, func(set *manifest.Set) {
		for _, it := range set.Pods {
			if writeErr != nil || o.pod != "" && o.pod != it.Name && o.pod != it.Namespace+"/"+it.Name {
				continue
			}
			if explained > 0 {
				fmt.Fprintln(s.out)
			}
			explained++
			r := render.PodWithPolicies(it, engine, ns.labels[it.Namespace])
			writeErr = render.WriteExplanation(s.out, it, &r)
			if r.Failed() {
				failed++
			}
		}
	})
	if writeErr != nil {
		return writeErr
	}
	if readErr != nil {
		return fmt.Errorf("explain: %w", readErr)
	}
	if explained == 0 {
		if o.pod != "" {
			return fmt.Errorf("explain: no pod %q in the manifests", o.pod)
		}
		return errors.New("explain: no pods in the manifests")
	}
	if failed > 0 {
		return errPodsFailed
	}
	return nil
}

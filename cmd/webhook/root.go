package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1 // some pod would be rejected or fail; a test suite failed
	exitError  = 2 // the command could not do its job
)

// errPodsFailed is returned by a command whose output is complete but which
// found pods that would not run; it has already said so.
var errPodsFailed = errors.New("some pods would not run")

// streams are a command's standard input and outputs.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

// run executes the webhook command line args and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCommand(streams{in: stdin, out: stdout, err: stderr})
	root.SetArgs(args)
	err := root.Execute()
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errPodsFailed), errors.Is(err, errSuiteFailed), errors.Is(err, errPodsDiffer), errors.Is(err, errBreakage):
		return exitFailed
	default:
		fmt.Fprintf(stderr, "webhook: %v\n", err)
		return exitError
	}
}

func newRootCommand(s streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "webhook",
		Short: "poddns pod DNS policy webhook and its offline tools",
		Long: `webhook is poddns's pod DNS policy webhook. serve runs the admission webhook
in a cluster; the offline subcommands show what the DNS policies, the API
server and kubelet do with pods' DNS settings, without a cluster: render,
explain, test for policy suites in CI, and impact, which replays
dnsd's query log through a proposed policy change.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(s.in)
	root.SetOut(s.out)
	root.SetErr(s.err)
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())
	})
	root.AddCommand(newRenderCommand(s), newExplainCommand(s), newTestCommand(s), newReportCommand(s), newServeCommand(s))
	root.AddCommand(newImpactCommand(s), newProfileCommand(s))
	return root
}

// restConfig is the kubeconfig file when given, else controller-runtime's
// lookup ($KUBECONFIG, in-cluster, ~/.kube/config).
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	return ctrl.GetConfig()
}

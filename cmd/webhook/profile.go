package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/pkg/nodeprofile"
)

// profileOptions are the flags of `webhook profile`.
type profileOptions struct {
	kubeconfig string
	poolLabels []string
	settings   string
	timeout    time.Duration
}

func newProfileCommand(s streams) *cobra.Command {
	var o profileOptions
	cmd := &cobra.Command{
		Use:   "profile [--kubeconfig FILE] [--pool-label KEY]... [--settings FILE]",
		Short: "Write a NodeProfileSet for the cluster's node pools from its Node objects",
		Long: `profile reads the cluster's Node objects and writes a NodeProfileSet (YAML,
on stdout) with one profile per node pool, for webhook serve, render, explain
and test (--profile, a suite's profile:).

Nodes are grouped by the first pool label they carry (--pool-label, repeatable;
by default poddns.io/pool, cloud.google.com/gke-nodepool,
eks.amazonaws.com/nodegroup, kubernetes.azure.com/agentpool,
karpenter.sh/nodepool), else by node.kubernetes.io/instance-type and
kubernetes.io/os. Each profile selects its nodes by those labels; profiles by
pool label come first, and a node belongs to the first profile that selects
it.

A node's kubelet DNS settings are not in its Node object. They come from the
--settings file (a NodeProfileSet whose defaults are copied and whose profiles,
by pool name, win field by field), else from node annotations:
  poddns.io/cluster-dns       kubelet --cluster-dns, IPs comma-separated
  poddns.io/cluster-domain    kubelet --cluster-domain
  poddns.io/node-resolv-conf  the content of the resolv.conf kubelet reads
What neither gives is left out (the built-in defaults then apply) and said on
stderr, as are pools whose nodes disagree.

Exit status: 0 when the set is written (notes or not), 2 when it cannot be
(no API server, no nodes, a bad settings file).`,
		Example: `  webhook profile > node-pools.yaml
  webhook profile --pool-label example.com/pool --settings kubelet-settings.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), s)
		},
	}
	fs := cmd.Flags()
	// controller-runtime registers its own --kubeconfig on the standard flag set.
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
	fs.StringArrayVar(&o.poolLabels, "pool-label", nil, "node label that names a node's pool; repeatable, the first present wins (default: the well-known ones)")
	fs.StringVar(&o.settings, "settings", "", "NodeProfileSet file with the pools' kubelet settings (its nodeSelectors are not used)")
	fs.DurationVar(&o.timeout, "timeout", time.Minute, "give up reading the nodes after this long")
	return cmd
}

func (o *profileOptions) run(ctx context.Context, s streams) error {
	opts := nodeprofile.FromNodesOptions{PoolLabels: o.poolLabels}
	if o.settings != "" {
		f, err := nodeprofile.ReadSetFile(o.settings)
		if err != nil {
			return fmt.Errorf("profile: --settings: %w", err)
		}
		opts.Settings = f
	}
	cfg, err := restConfig(o.kubeconfig)
	if err != nil {
		return fmt.Errorf("profile: kubeconfig: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	var nodes []corev1.Node
	list := metav1.ListOptions{Limit: 500}
	for {
		page, err := cs.CoreV1().Nodes().List(ctx, list)
		if err != nil {
			return fmt.Errorf("profile: list nodes: %w", err)
		}
		nodes = append(nodes, page.Items...)
		if list.Continue = page.Continue; list.Continue == "" {
			break
		}
	}
	if len(nodes) == 0 {
		return errors.New("profile: the cluster has no nodes")
	}
	set, notes := nodeprofile.FromNodes(nodes, opts)
	out, err := yaml.Marshal(set)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	fmt.Fprintf(s.out, "# webhook profile: %d node pools from %d nodes of %s\n", len(set.Profiles), len(nodes), cfg.Host)
	if _, err := s.out.Write(out); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	for _, n := range notes {
		fmt.Fprintf(s.err, "note: %s\n", n)
	}
	return nil
}

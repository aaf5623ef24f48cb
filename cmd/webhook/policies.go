package main

import (
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/nodepool"
	"github.com/poddns/poddns/pkg/policy"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// policyOptions are the policy flags shared by render and explain.
type policyOptions struct {
	paths []string
	mode  string
}

func (o *policyOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&o.paths, "policies", "p", nil, "DNSPolicy file or directory (its .yaml, .yml and .json files; ..-prefixed ConfigMap entries ignored); repeatable")
	fs.StringVar(&o.mode, "mode", string(policy.GlobalPerPolicy), "global policy mode, as in the webhook's configuration: enforce, audit or per-policy")
}

// engine loads the policies into an engine on the node profile or, when not
// nil, the node pools. Policy errors are printed to errOut one per line; the
// returned error counts them.
func (o *policyOptions) engine(profile *resolvconf.NodeProfile, pools *nodepool.Set, errOut io.Writer) (*policy.Engine, error) {
	mode, err := policy.ParseGlobalMode(o.mode)
	if err != nil {
		return nil, fmt.Errorf("--mode: %w", err)
	}
	set, err := policy.Load(o.paths...)
	if err != nil {
		bad := configfile.Leaves(err)
		for _, e := range bad {
			fmt.Fprintf(errOut, "error: %v\n", e)
		}
		return nil, fmt.Errorf("%d errors in the policies", len(bad))
	}
	return policy.NewEngine(set, policy.EngineOptions{Profile: profile, Pools: pools, Mode: mode})
}

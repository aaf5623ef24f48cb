package rig

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// UpstreamAnswer is what the rig's upstream resolver answers every A query
// with (NOERROR without records for other types).
const UpstreamAnswer = "192.0.2.80"

// startUpstream serves the node's upstream resolver (the profile's first
// nameserver, an address on the rig's lo) from the test process, with a
// socket opened inside the rig: no query leaves the machine.
func (c *Cluster) startUpstream() error {
	var pc net.PacketConn
	err := c.InNetns(func() error {
		var err error
		pc, err = net.ListenPacket("udp", net.JoinHostPort(c.Profile.Upstream, "53"))
		return err
	})
	if err != nil {
		return fmt.Errorf("the upstream resolver on %s: %w", c.Profile.Upstream, err)
	}
	c.upstream = dnstest.ServeUpstream(c.t, pc, UpstreamAnswer)
	return nil
}

// UpstreamQueries is how many queries the rig's upstream resolver has
// answered.
func (c *Cluster) UpstreamQueries() int32 { return c.upstream.Load() }

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// dumpLogs copies the components' logs to bin/rig-logs/<test>/ and adds
// the cluster's events, pods and nodes, for a failed test.
func (c *Cluster) dumpLogs() {
	out := filepath.Join(c.root, "bin", "rig-logs", unsafeName.ReplaceAllString(c.t.Name(), "_"))
	_ = os.RemoveAll(out)
	if err := os.MkdirAll(out, 0o755); err != nil {
		c.t.Logf("rig: logs: %v", err)
		return
	}
	logs, _ := filepath.Glob(filepath.Join(c.Dir, "logs", "*.log"))
	for _, l := range logs {
		if b, err := os.ReadFile(l); err == nil {
			_ = os.WriteFile(filepath.Join(out, filepath.Base(l)), b, 0o644)
		}
	}
	if c.Client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var b strings.Builder
		b.WriteString("# events\n")
		if evs, err := c.Client.CoreV1().Events("").List(ctx, metav1.ListOptions{}); err == nil {
			sort.Slice(evs.Items, func(i, j int) bool { return evs.Items[i].LastTimestamp.Before(&evs.Items[j].LastTimestamp) })
			for _, e := range evs.Items {
				fmt.Fprintf(&b, "%s %s %s/%s %s: %s\n", e.LastTimestamp.UTC().Format(time.RFC3339), e.Type,
					e.InvolvedObject.Kind, e.Namespace+"/"+e.InvolvedObject.Name, e.Reason, e.Message)
			}
		}
		b.WriteString("# pods\n")
		if pods, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); err == nil {
			for _, p := range pods.Items {
				fmt.Fprintf(&b, "pod %s/%s %s node=%s ip=%s\n", p.Namespace, p.Name, p.Status.Phase, p.Spec.NodeName, p.Status.PodIP)
				for _, s := range p.Status.ContainerStatuses {
					fmt.Fprintf(&b, "  %s ready=%v restarts=%d state=%+v\n", s.Name, s.Ready, s.RestartCount, s.State)
				}
			}
		}
		_ = os.WriteFile(filepath.Join(out, "cluster.txt"), []byte(b.String()), 0o644)
	}
	c.t.Logf("rig: logs, events and pods in %s", out)
}

// Package kubeletdiff checks github.com/poddns/poddns/pkg/resolvconf against
// kubelet's real pod DNS code (k8s.io/kubernetes/pkg/kubelet/network/dns) on
// hand-picked and randomly generated hostile inputs. See README.md.
package kubeletdiff

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	nodeutil "k8s.io/component-helpers/node/util"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/kubelet/network/dns"
	utilnet "k8s.io/utils/net"

	"github.com/poddns/poddns/pkg/resolvconf"
)

// fileMode says what --resolv-conf points at.
type fileMode int

const (
	modeNone    fileMode = iota // --resolv-conf="": no file
	modeFile                    // a file holding Content
	modeMissing                 // a path that does not exist
	modeDir                     // a directory (open succeeds, read fails)
)

func (m fileMode) MarshalJSON() ([]byte, error) {
	return json.Marshal([]string{"none", "file", "missing", "dir"}[m])
}

// nodeCase is one kubelet configuration.
type nodeCase struct {
	ClusterDomain string
	ClusterDNS    []string
	// NodeIP is the --node-ip flag. poddns gets it as NodeIPs: []string{NodeIP},
	// or split at the commas when NodeIPSplit is set (it joins them again).
	NodeIP      string
	NodeIPSplit bool
	Mode        fileMode
	// FileName is the base name of the resolv.conf path (it shows in the
	// start-up check's messages).
	FileName string
	Content  string
	// Inline hands the content to poddns as ResolvConfData instead of letting
	// it read the file (kubelet always reads the file).
	Inline bool
}

// tcase is a node and the pods computed on it, in order, with one kubelet
// Configurer and one poddns NodeProfile.
type tcase struct {
	Name string `json:",omitempty"`
	Node nodeCase
	Pods []*corev1.Pod
}

type event struct{ Object, Type, Reason, Message string }

// logLine is an error-level log line: kubelet's message and error text.
type logLine struct{ Msg, Err string }

type podOutcome struct {
	Err                            *string
	Nameservers, Searches, Options []string
	Events                         []event
	Logs                           []logLine // kubelet side only
	OurLogs                        []string  // poddns side only
}

type nodeOutcome struct {
	StartErr  *string  // kubelet refuses to start
	StartLogs []string // "Could not parse some node IP(s)" and "Invalid clusterDNS IP" lines, in kubelet's order
	Check     []event  // CheckLimitsForResolvConf
	Pods      []podOutcome
}

// captureSink is a logr sink keeping error-level lines.
type captureSink struct{ lines *[]logLine }

func (s captureSink) Init(logr.RuntimeInfo)          {}
func (s captureSink) Enabled(int) bool               { return false }
func (s captureSink) Info(int, string, ...any)       {}
func (s captureSink) WithValues(...any) logr.LogSink { return s }
func (s captureSink) WithName(string) logr.LogSink   { return s }
func (s captureSink) Error(err error, msg string, _ ...any) {
	e := "<nil>"
	if err != nil {
		e = err.Error()
	}
	*s.lines = append(*s.lines, logLine{msg, e})
}

// parseFakeEvent splits a FakeRecorder line with IncludeObject:
// "<type> <reason> <message> involvedObject{kind=<kind>,apiVersion=<v>}".
func parseFakeEvent(s string) event {
	var ev event
	if i := strings.LastIndex(s, " involvedObject{kind="); i >= 0 {
		rest := s[i+len(" involvedObject{kind="):]
		ev.Object, _, _ = strings.Cut(rest, ",")
		s = s[:i]
	}
	ev.Type, s, _ = strings.Cut(s, " ")
	ev.Reason, ev.Message, _ = strings.Cut(s, " ")
	return ev
}

func drain(rec *record.FakeRecorder) []event {
	var out []event
	for {
		select {
		case s := <-rec.Events:
			out = append(out, parseFakeEvent(s))
		default:
			return out
		}
	}
}

func strp(s string) *string { return &s }

// setupFiles prepares the node's resolv.conf under dir and returns the path
// both sides are given.
func setupFiles(t testing.TB, dir string, nc *nodeCase) string {
	name := nc.FileName
	if name == "" {
		name = "resolv.conf"
	}
	switch nc.Mode {
	case modeNone:
		return ""
	case modeMissing:
		return filepath.Join(dir, "missing-"+name)
	case modeDir:
		p := filepath.Join(dir, "dir-"+name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(nc.Content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runKubelet does what kubelet does: parse --node-ip (RunKubelet) and
// --cluster-dns (NewMainKubelet), build the Configurer, run the start-up check
// (syncLoop, only with a resolv.conf), then GetPodDNS for every pod.
func runKubelet(tc *tcase, path string) nodeOutcome {
	var out nodeOutcome
	nodeIPs, invalidNodeIPs, err := nodeutil.ParseNodeIPArgument(tc.Node.NodeIP, "")
	if err != nil {
		out.StartErr = strp(fmt.Sprintf("bad --node-ip %q: %v", tc.Node.NodeIP, err))
		return out
	}
	if len(invalidNodeIPs) != 0 {
		// RunKubelet: logger.Info("Could not parse some node IP(s), ignoring
		// them", "IPs", invalidNodeIps), before NewMainKubelet runs. The
		// key/value rendering is poddns' (%q of the list).
		out.StartLogs = append(out.StartLogs, fmt.Sprintf("Could not parse some node IP(s), ignoring them %q", invalidNodeIPs))
	}
	clusterDNS := make([]net.IP, 0, len(tc.Node.ClusterDNS))
	for _, entry := range tc.Node.ClusterDNS {
		ip := utilnet.ParseIPSloppy(entry)
		if ip == nil {
			out.StartLogs = append(out.StartLogs, fmt.Sprintf("Invalid clusterDNS IP %q", entry))
			continue
		}
		clusterDNS = append(clusterDNS, ip)
	}
	rec := record.NewFakeRecorder(4096)
	rec.IncludeObject = true
	nodeRef := &corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: "node-1", UID: "node-1"}
	c := dns.NewConfigurer(rec, nodeRef, nodeIPs, clusterDNS, tc.Node.ClusterDomain, path)
	if c.ResolverConfig != "" {
		c.CheckLimitsForResolvConf(klog.Background())
		out.Check = drain(rec)
	}
	for _, pod := range tc.Pods {
		var logs []logLine
		ctx := klog.NewContext(context.Background(), logr.New(captureSink{&logs}))
		cfg, err := c.GetPodDNS(ctx, pod.DeepCopy())
		po := podOutcome{Events: drain(rec), Logs: logs}
		if err != nil {
			po.Err = strp(err.Error())
		} else {
			po.Nameservers, po.Searches, po.Options = cfg.Servers, cfg.Searches, cfg.Options
		}
		out.Pods = append(out.Pods, po)
	}
	return out
}

// runOurs does the same with poddns.
func runOurs(t testing.TB, tc *tcase, path string) nodeOutcome {
	var out nodeOutcome
	p, err := newProfile(tc, path)
	if err != nil {
		out.StartErr = strp(err.Error())
		return out
	}
	out.StartLogs = p.Logs()
	if ev := p.CheckLimits(); ev != nil {
		out.Check = []event{{ev.Object, ev.Type, ev.Reason, ev.Message}}
	}
	out.Pods = computePods(t, tc, p)
	return out
}

// newProfile builds poddns' NodeProfile for tc's node.
func newProfile(tc *tcase, path string) (*resolvconf.NodeProfile, error) {
	cfg := resolvconf.NodeConfig{
		ClusterDomain: tc.Node.ClusterDomain,
		ClusterDNS:    slices.Clone(tc.Node.ClusterDNS),
		NodeIPs:       []string{tc.Node.NodeIP},
		ResolvConf:    path,
	}
	if tc.Node.NodeIPSplit {
		cfg.NodeIPs = strings.Split(tc.Node.NodeIP, ",")
	}
	if tc.Node.Inline && tc.Node.Mode == modeFile {
		cfg.ResolvConfData = append([]byte{}, tc.Node.Content...)
	}
	return resolvconf.NewNodeProfile(cfg)
}

// computePods runs resolvconf.Compute for each of tc's pods on p, twice.
// After the first pass the caller owns each result, so the test scribbles
// over it; the second pass must give the same results all the same.
func computePods(t testing.TB, tc *tcase, p *resolvconf.NodeProfile) []podOutcome {
	var out []podOutcome
	for pass := 0; pass < 2; pass++ {
		for i, pod := range tc.Pods {
			in := pod.DeepCopy()
			res, err := resolvconf.Compute(in, p)
			if !reflect.DeepEqual(in, pod) {
				t.Errorf("resolvconf.Compute modified its pod")
			}
			var po podOutcome
			if err != nil {
				po.Err = strp(err.Error())
			} else {
				c := res.Config
				po.Nameservers, po.Searches, po.Options = slices.Clone(c.Nameservers), slices.Clone(c.Searches), slices.Clone(c.Options)
				po.OurLogs = slices.Clone(res.Logs)
				for _, ev := range res.Events {
					po.Events = append(po.Events, event{ev.Object, ev.Type, ev.Reason, ev.Message})
				}
				for _, list := range [][]string{c.Nameservers, c.Searches, c.Options, res.Logs} {
					for j := range list {
						list[j] = "SCRIBBLED"
					}
					_ = append(list, "SCRIBBLED") // writes into spare capacity, if any
				}
			}
			if pass == 0 {
				out = append(out, po)
			} else if !reflect.DeepEqual(po, out[i]) {
				t.Errorf("pod[%d]: poddns gives another result after its earlier results were modified by the caller:\n  first %+v\n  then  %+v\ncase: %s", i, out[i], po, describe(tc))
			}
		}
	}
	return out
}

func errText(e *string) string {
	if e == nil {
		return "<no error>"
	}
	return strconv.Quote(*e)
}

func sameList(a, b []string) bool { return len(a) == 0 && len(b) == 0 || slices.Equal(a, b) }

func sortedCopy(a []string) []string {
	s := slices.Clone(a)
	slices.Sort(s)
	return s
}

// compare returns the differences between kubelet's outcome k and ours o.
func compare(k, o nodeOutcome) []string {
	var d []string
	if (k.StartErr == nil) != (o.StartErr == nil) || k.StartErr != nil && *k.StartErr != *o.StartErr {
		return []string{fmt.Sprintf("start-up error: kubelet %s, poddns %s", errText(k.StartErr), errText(o.StartErr))}
	}
	if k.StartErr != nil {
		return nil
	}
	if !sameList(k.StartLogs, o.StartLogs) {
		what := "start-up logs"
		if sameList(sortedCopy(k.StartLogs), sortedCopy(o.StartLogs)) {
			what = "start-up log order"
		}
		d = append(d, fmt.Sprintf("%s: kubelet %q, poddns %q", what, k.StartLogs, o.StartLogs))
	}
	if !slices.Equal(k.Check, o.Check) {
		d = append(d, fmt.Sprintf("CheckLimitsForResolvConf: kubelet %q, poddns %q", k.Check, o.Check))
	}
	for i := range k.Pods {
		kp, op := k.Pods[i], o.Pods[i]
		pre := fmt.Sprintf("pod[%d]: ", i)
		if (kp.Err == nil) != (op.Err == nil) || kp.Err != nil && *kp.Err != *op.Err {
			d = append(d, pre+fmt.Sprintf("error: kubelet %s, poddns %s", errText(kp.Err), errText(op.Err)))
		}
		if kp.Err != nil || op.Err != nil {
			continue
		}
		if !sameList(kp.Nameservers, op.Nameservers) {
			d = append(d, pre+fmt.Sprintf("nameservers: kubelet %q, poddns %q", kp.Nameservers, op.Nameservers))
		}
		if !sameList(kp.Searches, op.Searches) {
			d = append(d, pre+fmt.Sprintf("searches: kubelet %q, poddns %q", kp.Searches, op.Searches))
		}
		if ks, os := sortedCopy(kp.Options), sortedCopy(op.Options); !sameList(ks, os) {
			d = append(d, pre+fmt.Sprintf("options (as multisets): kubelet %q, poddns %q", ks, os))
		}
		if !slices.Equal(kp.Events, op.Events) {
			d = append(d, pre+fmt.Sprintf("events: kubelet %q, poddns %q", kp.Events, op.Events))
		}
		// Logs: poddns' Logs are free text; each must start with kubelet's
		// message and contain kubelet's error text, in the same order.
		logsOK := len(kp.Logs) == len(op.OurLogs)
		for j := 0; logsOK && j < len(kp.Logs); j++ {
			logsOK = strings.HasPrefix(op.OurLogs[j], kp.Logs[j].Msg) && strings.Contains(op.OurLogs[j], kp.Logs[j].Err)
		}
		if !logsOK {
			d = append(d, pre+fmt.Sprintf("error logs: kubelet %q, poddns %q", kp.Logs, op.OurLogs))
		}
	}
	return d
}

// check runs tc through both and returns the differences.
func check(t testing.TB, dir string, tc *tcase) []string {
	d, _ := checkOutcome(t, dir, tc)
	return d
}

// checkOutcome is check that also returns kubelet's outcome.
func checkOutcome(t testing.TB, dir string, tc *tcase) ([]string, nodeOutcome) {
	path := setupFiles(t, dir, &tc.Node)
	k := runKubelet(tc, path)
	o := runOurs(t, tc, path)
	d := compare(k, o)
	if len(d) == 0 && len(tc.Pods) > 0 {
		// Determinism and no aliasing: the first pod again, on a fresh
		// profile and a fresh Configurer, gives the same result.
		first := &tcase{Node: tc.Node, Pods: tc.Pods[:1]}
		if d2 := compare(k.firstOnly(), runOurs(t, first, path)); len(d2) > 0 {
			d = append(d, "poddns, first pod recomputed alone differs from kubelet: "+strings.Join(d2, "; "))
		}
	}
	return d, k
}

// coverage counts what kubelet did over a run, to show which paths the
// generated cases reach.
type coverage map[string]int

func (c coverage) add(tc *tcase, k nodeOutcome) {
	c["nodes"]++
	if k.StartErr != nil {
		c["node: bad --node-ip"]++
		return
	}
	c["node: mode "+[]string{"none", "file", "missing", "dir"}[tc.Node.Mode]]++
	if len(k.StartLogs) > 0 {
		c["node: invalid clusterDNS entry"]++
	}
	for _, ev := range k.Check {
		msg := ev.Message
		switch {
		case strings.Contains(msg, "more than 29 domains"), strings.Contains(msg, "more than 32 domains"):
			msg = "too many domains"
		case strings.Contains(msg, "search path which length"):
			msg = "search path > 253"
		case strings.Contains(msg, "search line which length"):
			msg = "search line > 2048"
		case strings.HasPrefix(msg, "open "):
			msg = "open error"
		case strings.HasPrefix(msg, "read "):
			msg = "read error"
		}
		c["node check: "+msg]++
	}
	for i, p := range k.Pods {
		c["pods"]++
		if p.Err != nil {
			c["pod: error"]++
			continue
		}
		c["pod: policy "+strconv.Quote(string(tc.Pods[i].Spec.DNSPolicy))]++
		if tc.Pods[i].Spec.DNSConfig != nil {
			c["pod: with dnsConfig"]++
		}
		for _, ev := range p.Events {
			r := ev.Object + " " + ev.Reason
			if strings.HasPrefix(ev.Message, "Nameserver") {
				r += " (nameservers)"
			} else if strings.HasPrefix(ev.Message, "Search") {
				r += " (searches)"
			}
			c["pod event: "+r]++
		}
		if len(p.Options) > 1 {
			c["pod: 2+ options"]++
		}
		if len(p.Nameservers) == 0 {
			c["pod: no nameserver"]++
		}
	}
}

func (c coverage) String() string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %-60s %d", k, c[k])
	}
	return b.String()
}

// diffKinds names the kinds of the differences d: the part before the first
// ':' without the pod index ("start-up logs", "searches", ...).
func diffKinds(d []string) []string {
	var out []string
	for _, s := range d {
		if strings.HasPrefix(s, "pod[") {
			_, s, _ = strings.Cut(s, ": ")
		}
		kind, _, _ := strings.Cut(s, ":")
		if !slices.Contains(out, kind) {
			out = append(out, kind)
		}
	}
	return out
}

func (n nodeOutcome) firstOnly() nodeOutcome {
	if len(n.Pods) > 1 {
		n.Pods = n.Pods[:1]
	}
	return n
}

func describe(tc *tcase) string {
	b, err := json.MarshalIndent(tc, "", "  ")
	if err != nil {
		return fmt.Sprintf("%#v", tc)
	}
	return string(b)
}

// randomRun returns a random run's seed (KUBELETDIFF_SEED, else the clock)
// and its number of cases: the variable casesEnv, else def (a tenth of it
// with -short).
func randomRun(casesEnv string, def int64) (seed uint64, cases int) {
	seed = uint64(envInt("KUBELETDIFF_SEED", time.Now().UnixNano()))
	if testing.Short() {
		def /= 10
	}
	return seed, int(envInt(casesEnv, def))
}

func envInt(name string, def int64) int64 {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.ParseInt(v, 0, 64)
		if err == nil {
			return n
		}
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

// TestNamedCases runs the hand-picked cases of cases_test.go.
func TestNamedCases(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range namedCases() {
		t.Run(tc.Name, func(t *testing.T) {
			if d := check(t, dir, tc); len(d) > 0 {
				t.Errorf("kubelet and poddns disagree:\n  %s\ncase: %s", strings.Join(d, "\n  "), describe(tc))
			}
		})
	}
}

// TestRandom runs KUBELETDIFF_CASES (default 20000; 2000 with -short) seeded
// random cases, for at most KUBELETDIFF_BUDGET (default 3m). The seed is
// KUBELETDIFF_SEED or the clock; it is logged, and reported on failure.
// Each disagreement is shrunk to a small case before it is reported.
func TestRandom(t *testing.T) {
	seed, n := randomRun("KUBELETDIFF_CASES", 20000)
	budget := envDuration("KUBELETDIFF_BUDGET", 3*time.Minute)
	maxReports := int(envInt("KUBELETDIFF_MAX_REPORTS", 5))
	g := gen{rand.New(rand.NewPCG(seed, 0x6b75626564696666))}
	dir := t.TempDir()
	start := time.Now()
	ran, failed, pods := 0, 0, 0
	cov := coverage{}
	kinds := map[string]int{} // disagreements by kind; one report per kind
	for ; ran < n && time.Since(start) < budget; ran++ {
		tc := g.testCase()
		pods += len(tc.Pods)
		d, k := checkOutcome(t, dir, tc)
		cov.add(tc, k)
		if len(d) == 0 {
			continue
		}
		failed++
		for _, kind := range diffKinds(d) {
			kinds[kind]++
			if kinds[kind] > 1 || len(kinds) > maxReports {
				continue
			}
			small := shrink(t, dir, tc, kind)
			t.Errorf("seed %d, case %d: kubelet and poddns disagree (%s):\n  %s\nminimised case: %s\n(original: %s)",
				seed, ran, kind, strings.Join(check(t, dir, small), "\n  "), describe(small), describe(tc))
		}
	}
	if failed > 0 {
		t.Logf("disagreements by kind: %v", kinds)
	}
	t.Logf("seed %d: %d cases (%d pods) in %v, %d disagreeing (rerun with KUBELETDIFF_SEED=%d)",
		seed, ran, pods, time.Since(start).Round(time.Millisecond), failed, seed)
	if testing.Verbose() {
		t.Logf("what kubelet did in these cases:%s", cov)
	}
}

// FuzzKubeletDiff drives the same generator from fuzz input; rawFile, when
// not empty, replaces the generated node resolv.conf.
//
//	go test -run '^$' -fuzz FuzzKubeletDiff -fuzztime 5m
func FuzzKubeletDiff(f *testing.F) {
	f.Add([]byte{}, "")
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, "nameserver 1.2.3.4\nsearch a.example. . b..\noptions ndots:2 ndots:\n")
	f.Add([]byte{200, 13, 77, 5, 250, 1, 0, 99, 42}, "nameserver\n")
	f.Add([]byte("hostile"), "search a\r\nSEARCH b\n# c\nsearch  c.\u00a0d\n")
	f.Add([]byte{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9}, "options a:b:c :x\nnameserver fe80::1%eth0 x\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, choices []byte, rawFile string) {
		tc := gen{&byteSource{b: choices}}.testCase()
		if rawFile != "" {
			tc.Node.Mode = modeFile
			tc.Node.Content = rawFile
		}
		if d := check(t, dir, tc); len(d) > 0 {
			t.Errorf("kubelet and poddns disagree:\n  %s\ncase: %s", strings.Join(d, "\n  "), describe(tc))
		}
	})
}

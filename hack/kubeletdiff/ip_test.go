package kubeletdiff

import (
	"math/rand/v2"
	"testing"

	"github.com/poddns/poddns/pkg/resolvconf"
	utilnet "k8s.io/utils/net"
)

// checkIP compares kubelet's reading of one --cluster-dns entry
// (utilnet.ParseIPSloppy, skipped when nil, rendered with String) with poddns'.
func checkIP(t testing.TB, s string) {
	t.Helper()
	want := []string{}
	if ip := utilnet.ParseIPSloppy(s); ip != nil {
		want = append(want, ip.String())
	}
	p, err := resolvconf.NewNodeProfile(resolvconf.NodeConfig{ClusterDNS: []string{s}})
	if err != nil {
		t.Fatalf("NewNodeProfile(ClusterDNS: [%q]): %v", s, err)
	}
	if got := p.ClusterDNS(); !sameList(got, want) {
		t.Errorf("--cluster-dns %q: kubelet keeps %q, poddns %q", s, want, got)
	}
}

// TestRandomIPs compares the sloppy IP parser on many generated strings
// (KUBELETDIFF_IP_CASES, default 200000; 20000 with -short).
func TestRandomIPs(t *testing.T) {
	seed, n := randomRun("KUBELETDIFF_IP_CASES", 200000)
	g := gen{rand.New(rand.NewPCG(seed, 0x6970))}
	valid := 0
	for _, s := range fixedIPs {
		checkIP(t, s)
	}
	for i := 0; i < n && !t.Failed(); i++ {
		s := g.ip()
		if utilnet.ParseIPSloppy(s) != nil {
			valid++
		}
		checkIP(t, s)
	}
	if t.Failed() {
		t.Logf("seed %d", seed)
	}
	t.Logf("seed %d: %d strings, %d of them addresses for kubelet", seed, n, valid)
}

// FuzzClusterDNSIP fuzzes the sloppy IP parser alone.
func FuzzClusterDNSIP(f *testing.F) {
	for _, s := range fixedIPs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkIP(t, s) })
}

// TestCompareDetects makes sure the comparison notices each kind of change.
func TestCompareDetects(t *testing.T) {
	base := func() nodeOutcome {
		return nodeOutcome{
			StartLogs: []string{"x"},
			Check:     []event{{"Node", "Warning", "R", "m"}},
			Pods: []podOutcome{{
				Nameservers: []string{"a", "b"}, Searches: []string{"s", "t"}, Options: []string{"o", "p:1"},
				Events:  []event{{"Pod", "Warning", "R", "m"}},
				Logs:    []logLine{{"Msg", "err"}},
				OurLogs: []string{"Msg: err"},
			}},
		}
	}
	if d := compare(base(), base()); len(d) > 0 {
		t.Fatalf("identical outcomes differ: %q", d)
	}
	o := base()
	o.Pods[0].Options = []string{"p:1", "o"}
	if d := compare(base(), o); len(d) > 0 {
		t.Errorf("option order should not matter: %q", d)
	}
	muts := map[string]func(o *nodeOutcome){
		"start error":  func(o *nodeOutcome) { o.StartErr = strp("e") },
		"start logs":   func(o *nodeOutcome) { o.StartLogs = nil },
		"check":        func(o *nodeOutcome) { o.Check[0].Message = "n" },
		"check kind":   func(o *nodeOutcome) { o.Check[0].Object = "Pod" },
		"pod error":    func(o *nodeOutcome) { o.Pods[0].Err = strp("e") },
		"ns order":     func(o *nodeOutcome) { o.Pods[0].Nameservers = []string{"b", "a"} },
		"search order": func(o *nodeOutcome) { o.Pods[0].Searches = []string{"t", "s"} },
		"option dup":   func(o *nodeOutcome) { o.Pods[0].Options = []string{"o", "p:1", "o"} },
		"event order":  func(o *nodeOutcome) { o.Pods[0].Events = append(o.Pods[0].Events, event{"Node", "Warning", "R", "m"}) },
		"event object": func(o *nodeOutcome) { o.Pods[0].Events[0].Object = "Node" },
		"logs":         func(o *nodeOutcome) { o.Pods[0].OurLogs = nil },
	}
	for name, mut := range muts {
		o := base()
		mut(&o)
		if d := compare(base(), o); len(d) == 0 {
			t.Errorf("%s: difference not noticed", name)
		}
	}
	if ev := parseFakeEvent(`Warning MissingClusterDNS pod: "a b". c involvedObject{kind=Pod,apiVersion=v1}`); ev != (event{"Pod", "Warning", "MissingClusterDNS", `pod: "a b". c`}) {
		t.Errorf("parseFakeEvent: %+v", ev)
	}
}

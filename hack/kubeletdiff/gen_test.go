package kubeletdiff

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// rng is the randomness the generator draws from: *math/rand/v2.Rand for the
// seeded run, a byteSource for the fuzz target.
type rng interface {
	IntN(n int) int
}

// byteSource turns fuzz input into choices; once exhausted it answers 0, which
// every pool below treats as its most ordinary entry.
type byteSource struct {
	b []byte
	i int
}

func (s *byteSource) IntN(n int) int {
	if n <= 1 {
		return 0
	}
	var v int
	width := 1
	if n > 256 {
		width = 3
	}
	for k := 0; k < width; k++ {
		v <<= 8
		if s.i < len(s.b) {
			v |= int(s.b[s.i])
			s.i++
		}
	}
	return v % n
}

type gen struct{ r rng }

func (g gen) n(n int) int               { return g.r.IntN(n) }
func (g gen) chance(pct int) bool       { return g.r.IntN(100) < pct }
func (g gen) pick(pool []string) string { return pool[g.r.IntN(len(pool))] }

// between returns a number in [lo, hi].
func (g gen) between(lo, hi int) int { return lo + g.r.IntN(hi-lo+1) }

var policies = []string{
	string(corev1.DNSClusterFirst), string(corev1.DNSClusterFirstWithHostNet),
	string(corev1.DNSDefault), string(corev1.DNSNone),
	"", "bogus", "clusterfirst", "ClusterFirst ", "None\x00",
}

// policy is one of the four valid policies three times in four.
func (g gen) policy() string {
	if g.chance(75) {
		return policies[g.n(4)]
	}
	return g.pick(policies)
}

var namespaces = []string{
	"default", "kube-system", "", "a", "Ns", "x.y", "ns with space", "ünï", "cluster.local",
	"svc", "default.svc", strings.Repeat("n", 63), strings.Repeat("n", 250), "tab\tns", "quote\"ns", "%s",
}

var podNames = []string{"p", "", "web-0", "weird\"name", "name%s%d", "ünï", "a b"}
var podUIDs = []string{"", "uid-1", "0b8c2f3e-6a1d-4f6c-9c1a-2f3e4d5c6b7a", "u\"id"}

var clusterDomains = []string{
	"", "cluster.local", "cluster.local", "cluster.local.", "Cluster.Local", "example.com", "a.example",
	"svc.cluster.local", ".", "..", "local", "c.l", " cluster.local", strings.Repeat("d", 240) + ".local",
}

// fixedIPs are hand-picked hostile or normal address strings.
var fixedIPs = []string{
	"10.96.0.10", "10.96.0.10", "010.096.000.010", "10.0.0.1", "1.1.1.1", "8.8.8.8", "0.0.0.0", "255.255.255.255",
	"fd00:10:96::a", "FD00:10:96:0:0:0:0:A", "fd00:10:96:0000:0000:0000:0000:000a", "::1", "::", "0::0",
	"::ffff:1.2.3.4", "::FFFF:10.96.0.10", "::ffff:0a60:000a", "::1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4",
	"1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4::5:6:7:8",
	"fe80::1%eth0", "fe80::1%", "garbage", "", " ", " 10.0.0.1", "10.0.0.1 ", "1.2.3", "1.2.3.4.5", "256.1.1.1",
	"1.2.3.4:53", "[::1]", "[::1]:53", "0000000001.2.3.4", "00000000000000000000001.1.1.1", "1.2.3.04",
	"00000000000001::", "0000000:1::", "fffff::", "1.2.3.-4", "+1.2.3.4", "1..2.3", ".1.2.3.4", "1.2.3.4.",
	":1::", "1:", ":", ":::", "::1:", "a.b.c.d", "1e1.2.3.4", "0x1.2.3.4", "１.２.３.４", "1.2.3.4\x00",
	"::ffff:1.2.3", "::ffff:1.2.3.4.5", "1:2:3:4:5:6:7:1.2.3", "1::1.2.3.4", "1::ffff:1.2.3.4",
}

func (g gen) ipv4() string {
	octets := 4
	if g.chance(5) {
		octets = g.between(2, 6)
	}
	parts := make([]string, octets)
	for i := range parts {
		v := g.n(256)
		if g.chance(3) {
			v = g.between(256, 1200)
		}
		s := fmt.Sprint(v)
		if g.chance(20) {
			s = strings.Repeat("0", g.between(1, 3)) + s
		}
		parts[i] = s
	}
	return strings.Join(parts, ".")
}

func (g gen) ipv6() string {
	groups := 8
	tail4 := g.chance(15)
	if tail4 {
		groups = 6
	}
	if g.chance(5) {
		groups = g.between(1, 10)
	}
	parts := make([]string, groups)
	for i := range parts {
		var v int
		switch g.n(4) {
		case 0:
			v = 0
		case 1:
			v = g.n(16)
		default:
			v = g.n(0x10000)
		}
		if g.chance(2) {
			v = g.between(0x10000, 0xfffff)
		}
		s := fmt.Sprintf("%x", v)
		if g.chance(20) {
			s = strings.Repeat("0", g.between(1, 4)) + s
		}
		if g.chance(20) {
			s = strings.ToUpper(s)
		}
		parts[i] = s
	}
	if tail4 && g.chance(50) {
		for i := 0; i < 5 && i < len(parts); i++ {
			parts[i] = "0"
		}
		if len(parts) == 6 {
			parts[5] = "ffff"
		}
	}
	s := strings.Join(parts, ":")
	if tail4 {
		s += ":" + g.ipv4()
	}
	if g.chance(50) {
		// Compress a run of groups into "::" (possibly a wrong one).
		ps := strings.Split(s, ":")
		a := g.n(len(ps))
		b := a + g.n(len(ps)-a)
		ps = append(ps[:a:a], append([]string{""}, ps[b:]...)...)
		s = strings.Join(ps, ":")
		if strings.HasPrefix(s, ":") && !strings.HasPrefix(s, "::") {
			s = ":" + s
		}
		if strings.HasSuffix(s, ":") && !strings.HasSuffix(s, "::") {
			s += ":"
		}
	}
	if g.chance(3) {
		s += "%eth0"
	}
	return s
}

const ipChars = ".:0123456789abcdefABCDEF%g []x"

func (g gen) mutate(s string) string {
	b := []byte(s)
	for k := g.between(1, 2); k > 0; k-- {
		switch op := g.n(3); {
		case op == 0 && len(b) > 0:
			i := g.n(len(b))
			b = append(b[:i], b[i+1:]...)
		case op == 1:
			i := g.n(len(b) + 1)
			b = append(b[:i], append([]byte{ipChars[g.n(len(ipChars))]}, b[i:]...)...)
		case len(b) > 0:
			b[g.n(len(b))] = ipChars[g.n(len(ipChars))]
		}
	}
	return string(b)
}

// ip draws an address string: fixed, random v4 or v6, sometimes mutated.
func (g gen) ip() string {
	var s string
	switch g.n(10) {
	case 0, 1, 2, 3:
		s = g.pick(fixedIPs)
	case 4, 5, 6:
		s = g.ipv4()
	default:
		s = g.ipv6()
	}
	if g.chance(8) {
		s = g.mutate(s)
	}
	return s
}

func (g gen) clusterDNS() []string {
	switch g.n(10) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	n := g.between(1, 5)
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		if i > 0 && g.chance(15) {
			out = append(out, out[g.n(len(out))]) // duplicate
			continue
		}
		out = append(out, g.ip())
	}
	return out
}

var nodeIPFlags = []string{
	"", "", "", "10.0.0.1", "fd00::1", "10.0.0.1,fd00::1", "fd00::1,10.0.0.1", "10.0.0.1,10.0.0.2",
	"0.0.0.0,::1", "::", "0.0.0.0", " 10.0.0.1 , fd00::1 ", "garbage", "10.0.0.1,garbage", "garbage,fd00::1,",
	",", ",,", "1.2.3.4,5.6.7.8,::1", "010.000.000.001", "::ffff:1.2.3.4", "::ffff:1.2.3.4,10.0.0.1",
	"::ffff:1.2.3.4,fd00::1", "fe80::1%eth0", "fe80::1%eth0,10.0.0.1", "FD00::1, 10.0.0.1", "::,0.0.0.0",
}

func (g gen) nodeIP() string {
	switch r := g.n(100); {
	case r < 40:
		return ""
	case r < 85:
		return g.pick(nodeIPFlags)
	}
	n := g.between(1, 2)
	if g.chance(10) {
		n = 3
	}
	parts := make([]string, n)
	for i := range parts {
		parts[i] = g.ip()
		if g.chance(20) {
			parts[i] = " " + parts[i] + "\t"
		}
	}
	return strings.Join(parts, ",")
}

// domainOfLen returns a lower-case domain of exactly n characters (n >= 1).
func domainOfLen(n int, letter byte) string {
	var b strings.Builder
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		l := min(n-b.Len(), 63)
		b.WriteString(strings.Repeat(string(letter), l))
	}
	s := b.String()
	if strings.HasSuffix(s, ".") { // never end on a dot by accident
		s = s[:len(s)-1] + string(letter)
	}
	return s
}

var fixedSearches = []string{
	"a.example", "a.example.", "a.example..", "b.example", "B.Example", ".", "..", "...", "x", "x.",
	"cluster.local", "cluster.local.", "svc.cluster.local", "default.svc.cluster.local", "kube-system.svc.cluster.local",
	"_srv.example", "#", "#comment", "a#b", "a;b", ";", "ex:ample", "ünï.example", "\xff\xfe", "a..b", "-a.example",
	"example.com", "example.com.", "local", "c.l",
}

func (g gen) domain() string {
	switch g.n(12) {
	case 0, 1, 2, 3, 4:
		return g.pick(fixedSearches)
	case 5:
		// Lengths around the 253-character limit, with and without a trailing dot.
		s := domainOfLen(g.pick1([]int{252, 253, 254, 255, 300}), byte('a'+g.n(26)))
		if g.chance(40) {
			s += "."
		}
		return s
	case 6:
		return domainOfLen(g.between(20, 140), byte('a'+g.n(26)))
	}
	labels := g.between(1, 4)
	parts := make([]string, labels)
	for i := range parts {
		l := g.between(1, 8)
		b := make([]byte, l)
		for j := range b {
			b[j] = "abcdefghijklmnopqrstuvwxyz0123456789-_"[g.n(38)]
			if g.chance(3) {
				b[j] = "ABCXYZ"[g.n(6)]
			}
		}
		parts[i] = string(b)
	}
	s := strings.Join(parts, ".")
	if g.chance(15) {
		s += strings.Repeat(".", g.between(1, 2))
	}
	return s
}

func (g gen) pick1(pool []int) int { return pool[g.n(len(pool))] }

// searchList draws a list of search domains: usually short, sometimes over
// the count limit, sometimes over the length limit.
func (g gen) searchList() []string {
	var n int
	switch g.n(10) {
	case 0:
		n = 0
	case 1:
		n = g.between(26, 40)
	case 2:
		// Few but long entries, to cross the 2048-character limit.
		n = g.between(8, 30)
		out := make([]string, n)
		for i := range out {
			out[i] = domainOfLen(g.between(60, 253), byte('a'+g.n(26)))
		}
		return out
	default:
		n = g.between(1, 6)
	}
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		if i > 0 && g.chance(10) {
			out = append(out, out[g.n(len(out))])
			continue
		}
		out = append(out, g.domain())
	}
	return out
}

var fixedOptions = []string{
	"ndots:2", "ndots:5", "ndots:", "ndots", "edns0", "timeout:1", "attempts:3", "attempts:3:4", ":x", ":",
	"rotate", "single-request-reopen", "use-vc", "a:b:c", "trust-ad", "no-aaaa", "inet6", "NDOTS:1", "#",
}

// manyOption draws from a large set of option names, with or without a value.
func (g gen) manyOption() string {
	s := fmt.Sprintf("o%d", g.n(40))
	if g.chance(50) {
		s += fmt.Sprintf(":%d", g.n(3))
	}
	return s
}

var separators = []string{
	" ", " ", " ", " ", "\t", "  ", " \t ", "\u00a0", "\u2003", "\u3000", "\v", "\f", "\u0085", "\u1680",
	"\u2028", "\r",
}

var lineEnds = []string{"\n", "\n", "\n", "\n", "\r\n", "\n\n", "\n \n", "\r"}

func (g gen) sep() string {
	if g.chance(80) {
		return " "
	}
	return g.pick(separators)
}

func (g gen) joinFields(fields []string) string {
	var b strings.Builder
	if g.chance(10) {
		b.WriteString(g.pick(separators))
	}
	for i, f := range fields {
		if i > 0 {
			b.WriteString(g.sep())
		}
		b.WriteString(f)
	}
	if g.chance(10) {
		b.WriteString(g.pick(separators))
	}
	return b.String()
}

var oddLines = []string{
	"# comment", "#nameserver 9.9.9.9", "   # indented comment", "; semicolon comment", ";nameserver 9.9.9.9",
	"domain example.com", "domain corp.example.", "sortlist 10.0.0.0/8", "lookup file bind", "Nameserver 9.9.9.9",
	"NAMESERVER 9.9.9.9", "SEARCH upper.example", "Search upper.example", "OPTIONS rotate", "option ndots:1",
	"searchx a.example", "nameserver9.9.9.9", "", " ", "\t", "\ufeffnameserver 9.9.9.9", "\x00", "search\x00 a.example",
	"options", "nameserver 1.2.3.4 # trailing comment", "nameserver 1.2.3.4#c", "search a.example # c d",
	"options ndots:3 # c", "search .", "search . .", "search", "search ..", "nameserver nameserver",
}

// fileLine draws one line of a node resolv.conf.
func (g gen) fileLine(allowEmptyNameserver bool) string {
	switch g.n(20) {
	case 0, 1, 2, 3, 4, 5:
		f := []string{"nameserver", g.ip()}
		if f[1] == "" || strings.TrimSpace(f[1]) == "" {
			f[1] = "1.1.1.1"
		}
		if g.chance(10) {
			f = append(f, g.pick([]string{"extra", "#", "# c", "1.2.3.4"}))
		}
		return g.joinFields(f)
	case 6:
		if allowEmptyNameserver {
			return g.joinFields([]string{"nameserver"})
		}
		return g.pick(oddLines)
	case 7, 8, 9, 10, 11:
		return g.joinFields(append([]string{"search"}, g.searchList()...))
	case 12, 13, 14:
		n := g.between(0, 5)
		if g.chance(10) {
			n = g.between(10, 25) // many names: poddns indexes long lists differently
		}
		f := []string{"options"}
		for i := 0; i < n; i++ {
			if g.chance(30) {
				f = append(f, g.manyOption())
				continue
			}
			f = append(f, g.pick(fixedOptions))
		}
		return g.joinFields(f)
	default:
		return g.pick(oddLines)
	}
}

// fileContent draws a node resolv.conf.
func (g gen) fileContent() string {
	if g.chance(4) {
		return g.pick([]string{"", "\n", "# only a comment\n", "\r\n", "   "})
	}
	errs := g.chance(15) // may hold a "nameserver" line without address
	n := g.between(1, 10)
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(g.fileLine(errs))
		if i < n-1 || g.chance(85) {
			b.WriteString(g.pick(lineEnds))
		}
	}
	return b.String()
}

var podNameservers = []string{
	"10.96.0.10", "1.1.1.1", "8.8.8.8", "", "fe80::1%eth0", "::1", "FD00::A", "fd00:10:96::a", "garbage",
	"127.0.0.1", "010.096.000.010", "9.9.9.9",
}

var optionNames = []string{"ndots", "edns0", "timeout", "attempts", "", "a:b", "ndots:5", ":", "rotate", "x y", "#"}
var optionValues = []string{"", "1", "2", "5", "a:b", ":", " ", "3:"}

func (g gen) dnsConfig(hostNS, clusterDNS []string) *corev1.PodDNSConfig {
	switch g.n(10) {
	case 0, 1, 2, 3:
		return nil
	case 4:
		return &corev1.PodDNSConfig{}
	}
	dc := &corev1.PodDNSConfig{}
	if g.chance(75) {
		n := g.between(0, 5)
		for i := 0; i < n; i++ {
			switch {
			case len(clusterDNS) > 0 && g.chance(20):
				dc.Nameservers = append(dc.Nameservers, g.pick(clusterDNS))
			case len(hostNS) > 0 && g.chance(20):
				dc.Nameservers = append(dc.Nameservers, g.pick(hostNS))
			case i > 0 && g.chance(15):
				dc.Nameservers = append(dc.Nameservers, dc.Nameservers[g.n(i)])
			default:
				dc.Nameservers = append(dc.Nameservers, g.pick(podNameservers))
			}
		}
	}
	if g.chance(75) {
		dc.Searches = g.searchList()
		for i := range dc.Searches {
			if g.chance(5) {
				dc.Searches[i] = g.pick([]string{"", ".", "svc.cluster.local", "default.svc.cluster.local"})
			}
		}
	}
	if g.chance(70) {
		n := g.between(0, 5)
		if n == 0 && g.chance(50) {
			dc.Options = []corev1.PodDNSConfigOption{}
		}
		for i := 0; i < n; i++ {
			o := corev1.PodDNSConfigOption{Name: g.pick(optionNames)}
			if g.chance(20) {
				o.Name, _, _ = strings.Cut(g.manyOption(), ":")
			}
			if g.chance(70) {
				v := g.pick(optionValues)
				o.Value = &v
			}
			dc.Options = append(dc.Options, o)
		}
	}
	return dc
}

func (g gen) pod(hostNS, clusterDNS []string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      g.pick(podNames),
			Namespace: g.pick(namespaces),
			UID:       types.UID(g.pick(podUIDs)),
		},
		Spec: corev1.PodSpec{
			DNSPolicy:   corev1.DNSPolicy(g.policy()),
			HostNetwork: g.chance(30),
			DNSConfig:   g.dnsConfig(hostNS, clusterDNS),
		},
	}
}

var resolvNames = []string{"resolv.conf", "resolv.conf", "resolv 'q'.conf", "res\"olv.conf", "résolv\t.conf"}

// testCase draws one node and a few pods that run on it.
func (g gen) testCase() *tcase {
	tc := &tcase{Node: nodeCase{
		ClusterDomain: g.pick(clusterDomains),
		ClusterDNS:    g.clusterDNS(),
		NodeIP:        g.nodeIP(),
		NodeIPSplit:   g.chance(30),
		FileName:      g.pick(resolvNames),
	}}
	switch r := g.n(100); {
	case r < 72:
		tc.Node.Mode = modeFile
		tc.Node.Content = g.fileContent()
		tc.Node.Inline = g.chance(30)
	case r < 92:
		tc.Node.Mode = modeNone
	case r < 97:
		tc.Node.Mode = modeMissing
	default:
		tc.Node.Mode = modeDir
	}
	if g.chance(10) {
		// A cluster domain that repeats a node search entry.
		if s := fileSearches(tc.Node.Content); len(s) > 0 {
			tc.Node.ClusterDomain = s[g.n(len(s))]
		}
	}
	hostNS := fileNameservers(tc.Node.Content)
	npods := g.between(1, 4)
	for i := 0; i < npods; i++ {
		tc.Pods = append(tc.Pods, g.pod(hostNS, tc.Node.ClusterDNS))
	}
	return tc
}

// fileSearches and fileNameservers give rough hints from a file for the
// generator (duplicates to draw); they are not the oracle.
func fileSearches(content string) []string { return slices.Concat(fileArgs(content, "search")...) }

func fileNameservers(content string) []string {
	var out []string
	for _, args := range fileArgs(content, "nameserver") {
		out = append(out, args[0])
	}
	return out
}

// fileArgs returns the arguments (at least one) of each line of content
// that starts with keyword.
func fileArgs(content, keyword string) [][]string {
	var out [][]string
	for _, l := range strings.Split(content, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == keyword {
			out = append(out, f[1:])
		}
	}
	return out
}

package integration

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"hash/fnv"
	"io/fs"
	"maps"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netns"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/internal/corefilecorpus"
	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/migrate"
	"github.com/poddns/poddns/pkg/serve/aaaa"
	"github.com/poddns/poddns/pkg/serve/daemon"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// corpusUpstream is the test upstream behind one name of
// testdata/corefiles/upstreams.yaml, in one server's namespace. Its answers
// depend on its name, so a query sent to the wrong upstream shows:
//   - a first label starting with "nx": NXDOMAIN; "nodata": NODATA;
//     "timeout": no reply at all (the servers' error path);
//   - names under in-addr.arpa and ip6.arpa: REFUSED (as the local upstream
//     of TestDNSDifferentialCoreDNS);
//   - A, AAAA and TXT: one record derived from the upstream's name and the
//     query name, TTL 300; other types NODATA.
type corpusUpstream struct {
	name   string
	serial uint32
	mu     sync.Mutex
	seen   []string // "name TYPE", lower case, in arrival order
}

func (u *corpusUpstream) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) != 1 {
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	u.mu.Lock()
	u.seen = append(u.seen, name+" "+dns.TypeToString[q.Qtype])
	u.mu.Unlock()
	first := strings.SplitN(name, ".", 2)[0]
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	soa := func() []dns.RR {
		rr, _ := dns.NewRR(fmt.Sprintf(". 60 IN SOA ns.%s.test. hostmaster.test. %d 7200 1800 86400 60", u.name, u.serial))
		return []dns.RR{rr}
	}
	h := fnv.New32a()
	h.Write([]byte(u.name + "/" + name))
	x := h.Sum32()
	hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: 300}
	switch {
	case strings.HasPrefix(first, "timeout"):
		return
	case dns.IsSubDomain("in-addr.arpa.", name) || dns.IsSubDomain("ip6.arpa.", name):
		m.Rcode = dns.RcodeRefused
	case strings.HasPrefix(first, "nx"):
		m.Rcode = dns.RcodeNameError
		m.Ns = soa()
	case strings.HasPrefix(first, "nodata"):
		m.Ns = soa()
	case q.Qtype == dns.TypeA:
		m.Answer = []dns.RR{&dns.A{Hdr: hdr, A: net.IPv4(198, 18, byte(x>>8), byte(x)).To4()}}
	case q.Qtype == dns.TypeAAAA:
		m.Answer = []dns.RR{&dns.AAAA{Hdr: hdr, AAAA: net.ParseIP(fmt.Sprintf("2001:db8::%x:%x", x>>16, x&0xffff))}}
	case q.Qtype == dns.TypeTXT:
		m.Answer = []dns.RR{&dns.TXT{Hdr: hdr, Txt: []string{"upstream=" + u.name}}}
	default:
		m.Ns = soa()
	}
	_ = w.WriteMsg(m)
}

func (u *corpusUpstream) queries() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.seen)
}

// side is one server under test (CoreDNS or dnsd) of a corpus case.
type side struct {
	*nsServer
	ups map[string]*corpusUpstream // by upstream name
}

// count is how many queries the upstreams of the side saw for "name TYPE".
func (s *side) count(q string) int {
	n := 0
	for _, u := range s.ups {
		for _, x := range u.queries() {
			if x == q {
				n++
			}
		}
	}
	return n
}

// migrateDiff is a difference that only a configuration with when can show.
type migrateDiff struct {
	deliberate
	when func(c daemon.Config) bool
}

// migrateDifferences are the ways dnsd with a migrated configuration
// answers differently from CoreDNS with the original, beyond
// deliberateDifferences (the cluster zone's), each with its reason. Every
// entry must occur in the corpus and any other difference fails the test.
var migrateDifferences = []migrateDiff{
	{deliberate: deliberate{
		name: "AAAA hack and cluster names",
		reason: "template ANY AAAA { rcode NOERROR } runs before kubernetes in CoreDNS and hides the AAAA records of dual-stack Services " +
			"(and the NXDOMAIN of every missing cluster name, and the names rewritten into the cluster); dnsd's aaaa filter (its translation) answers NODATA " +
			"for names outside the cluster only, as issue 14 asks",
		match: func(q dns.Question, d, c *dns.Msg) bool {
			// CoreDNS's template answers NOERROR with nothing at all (no
			// SOA); dnsd answers from its cluster records (authoritative:
			// the records, NODATA or NXDOMAIN), for a cluster name or a
			// name rewritten to one.
			return q.Qtype == dns.TypeAAAA && nodataReply(c) && len(c.Ns) == 0 && d.Authoritative
		},
	}, when: func(c daemon.Config) bool { return c.AAAA.Filter == aaaa.ModeAll }},
	{deliberate: deliberate{
		name: "AA bit on CoreDNS's cache hits",
		reason: "a forwarded answer served from CoreDNS's cache carries the AA bit (its cache sets it on every hit: some clients drop " +
			"non-authoritative replies), though CoreDNS is not authoritative for the name; dnsd keeps the upstream's flags (RFC 1035 §4.1.1). Otherwise equal",
		match: func(q dns.Question, d, c *dns.Msg) bool {
			if !c.Authoritative || d.Authoritative || dns.IsSubDomain("cluster.local.", strings.ToLower(q.Name)) {
				return false
			}
			x := c.Copy()
			x.Authoritative = false
			return canonNoTTL(nil, x, time.Time{}) == canonNoTTL(nil, d, time.Time{})
		},
	}, when: func(c daemon.Config) bool { return !c.Cache.Disabled }},
	{deliberate: deliberate{
		name: "case of a cached cluster answer",
		reason: "CoreDNS's cache also holds cluster answers, keyed by the lower-case name, and a hit gives the records the spelling of the " +
			"query that filled it (0x20 lost); dnsd answers cluster names from its store in the spelling asked. Otherwise equal",
		match: func(q dns.Question, d, c *dns.Msg) bool {
			return q.Name != strings.ToLower(q.Name) && strings.ToLower(renderReply(d)) == strings.ToLower(renderReply(c))
		},
	}, when: func(c daemon.Config) bool { return !c.Cache.Disabled }},
	{deliberate: deliberate{
		name: "apex NS glue",
		reason: "<zone> NS: both answer ns.dns.<zone>; CoreDNS adds as glue the addresses of its own interfaces when no kube-dns Service " +
			"endpoint holds its IP (here the addresses on lo of its namespace), dnsd adds no glue (it does not know the address it is reached by)",
		match: func(q dns.Question, d, c *dns.Msg) bool {
			if !strings.EqualFold(q.Name, "cluster.local.") || q.Qtype != dns.TypeNS || len(c.Extra) == 0 {
				return false
			}
			x := c.Copy()
			x.Extra = nil
			return canonNoTTL(nil, x, time.Time{}) == canonNoTTL(nil, d, time.Time{})
		},
	}},
}

// unobservable are the translated directives no query can reach, with the
// reason; every other translated directive must be reached.
var unobservable = map[string]string{
	"reload": "CoreDNS checks its Corefile every 30s (with jitter); the reload of dnsd's configuration, hosts files and source is tested by cmd/dnsd's TestConfigWatch and TestCAWatch and pkg/serve/static's TestHostsFileReload",
}

// TestMigrateDifferential translates each configuration of the corpus in
// testdata/corefiles with package migrate, runs CoreDNS on the original and
// dnsd on the translation, each in private network and mount namespaces
// (the case's files on /etc/coredns, testdata/corefiles/resolv.conf on
// /etc/resolv.conf, the upstream addresses of upstreams.yaml on lo served
// by loopback test upstreams, the API server of envtest reached in-cluster
// through a proxy), asks both a query set generated from the translation,
// and compares the replies: rcode and answer set equal, TTLs within a
// second. Every difference must be listed (deliberateDifferences,
// migrateDifferences) and every listed one seen, and every translated
// directive must be reached by a query (or be unobservable, with the
// reason).
func TestMigrateDifferential(t *testing.T) {
	corebin := coreDNSBinary(t)
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "unshare", "ip", "mount", "sh")
	start := time.Now()
	dir, cases := corefilecorpus.Load(t)
	upstreams, err := corefilecorpus.Upstreams(dir)
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.Start(t, withDualStack)
	c := env.Client
	svcs := genCluster(t, c, 1, 6)
	testenv.Create(t, c, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "postgres", Namespace: "default"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "pg", Port: 5432}}}})
	sa := serviceAccountDir(t, env)
	caPEM, dotCert := dotCertificate(t)
	dnsd := buildDnsd(t)
	apiHost := strings.TrimSuffix(strings.TrimPrefix(env.Config.Host, "https://"), "/")
	_, apiPort, err := net.SplitHostPort(apiHost)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("control plane, cluster (%d Services), service account and dnsd binary ready in %s", len(svcs)+1, time.Since(start).Round(time.Millisecond))

	seen := map[string]int{}
	for _, cs := range cases {
		t.Run(cs.Name, func(t *testing.T) {
			caseStart := time.Now()
			in := cs.Input()
			for _, p := range []*string{&in.Corefile, &in.KubeDNSConfigMap, &in.Custom, &in.NodeProfile} {
				if *p != "" {
					*p = filepath.Join(dir, *p)
				}
			}
			res, err := migrate.Translate(in)
			if err != nil {
				t.Fatal(err)
			}
			etc := caseEtc(t, dir, cs, res.YAML, caPEM)
			var addrs []string
			for _, as := range upstreams {
				for _, a := range as {
					ip, _, _ := upstreamAddr(a)
					if !slices.Contains(addrs, ip) {
						addrs = append(addrs, ip)
					}
				}
			}
			spec := func(s *side) nsSpec {
				return nsSpec{Addrs: addrs, Etc: etc, Resolv: filepath.Join(dir, "resolv.conf"), SA: sa,
					Env: []string{"KUBERNETES_SERVICE_HOST=127.0.0.1", "KUBERNETES_SERVICE_PORT=" + apiPort},
					Setup: func(ns netns.NsHandle) {
						proxyTCPIn(t, ns, net.JoinHostPort("127.0.0.1", apiPort), apiHost)
						for _, name := range slices.Sorted(maps.Keys(upstreams)) {
							u := &corpusUpstream{name: name, serial: uint32(time.Now().Unix())}
							s.ups[name] = u
							for _, a := range upstreams[name] {
								if _, hostport, isTLS := upstreamAddr(a); isTLS {
									serveDoTIn(t, ns, hostport, dotCert, u)
								} else {
									serveDNSIn(t, ns, hostport, u)
								}
							}
						}
					}}
			}
			core := &side{ups: map[string]*corpusUpstream{}}
			core.nsServer = startInNamespaces(t, "coredns", spec(core), corebin, "-conf", "/etc/coredns/Corefile")
			dd := &side{ups: map[string]*corpusUpstream{}}
			dd.nsServer = startInNamespaces(t, "dnsd", spec(dd), dnsd, "--config", "/etc/coredns/dnsd.yaml")
			addr := "127.0.0.1:53"
			for _, s := range []*side{core, dd} {
				pollIn(t, s, addr, dnstest.Query("postgres.default.svc.cluster.local.", dns.TypeA, 0), 30*time.Second)
			}
			r := &diffRun{t: t, core: core, dnsd: dd, addr: addr, cfg: res.Config, start: start, reached: map[string]bool{}, upstreams: upstreams}
			r.run(c, svcs, cs, dir)
			r.checkReach(res)
			for k, v := range r.seen {
				seen[k] += v
			}
			t.Logf("%s: %d directives translated, %d not; %d queries to each server, %d differences explained, %d not; %s",
				cs.Name, len(res.Translated), len(res.Skipped), r.queries, sum(r.seen), len(r.unexplained), time.Since(caseStart).Round(time.Millisecond))
			if len(r.unexplained) > 0 {
				t.Errorf("%d differences are not listed:\n%s", len(r.unexplained), strings.Join(r.unexplained[:min(40, len(r.unexplained))], "\n"))
			}
		})
	}
	for _, d := range deliberateDifferences {
		t.Logf("difference %q seen %d times: %s", d.name, seen[d.name], d.reason)
	}
	for _, d := range migrateDifferences {
		t.Logf("difference %q seen %d times: %s", d.name, seen[d.name], d.reason)
	}
	for _, d := range migrateDifferences {
		if seen[d.name] == 0 {
			t.Errorf("difference %q never occurred: remove it from migrateDifferences or fix the queries", d.name)
		}
	}
	t.Logf("whole corpus in %s", time.Since(start).Round(time.Millisecond))
}

// upstreamAddr reads an address of upstreams.yaml: "IP", "IP:port" or
// "tls://IP[:port]" (ports 53 and 853 by default).
func upstreamAddr(a string) (ip, hostport string, isTLS bool) {
	port := "53"
	if rest, ok := strings.CutPrefix(a, "tls://"); ok {
		a, port, isTLS = rest, "853", true
	}
	if h, _, err := net.SplitHostPort(a); err == nil {
		return h, a, isTLS
	}
	return a, net.JoinHostPort(a, port), isTLS
}

// dotCertificate makes a CA and a serving certificate it signed for the
// names the corpus's DoT forwards expect.
func dotCertificate(t *testing.T) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "corpus test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(2 * time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "cloudflare-dns.com"},
		DNSNames: []string{"cloudflare-dns.com", "dns.corp.example"}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(2 * time.Hour)}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// serviceAccountDir makes the in-cluster credentials both servers read: a
// ServiceAccount bound to cluster-admin, a token for it, the API server's
// CA.
func serviceAccountDir(t *testing.T, env *testenv.Env) string {
	t.Helper()
	c := env.Client
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "cluster-dns", Namespace: "kube-system"}}
	testenv.Create(t, c, sa, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "cluster-dns"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: sa.Namespace}}})
	tr := &authenticationv1.TokenRequest{}
	if err := c.SubResource("token").Create(t.Context(), sa, tr); err != nil {
		t.Fatalf("token request: %v", err)
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{"token": []byte(tr.Status.Token), "ca.crt": env.Config.CAData, "namespace": []byte("kube-system")} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// caseEtc builds the directory mounted on /etc/coredns: CoreDNS's Corefile,
// the case's files (a ConfigMap file as the directory of its keys), the
// migrated config as dnsd.yaml and the DoT upstreams' CA as ca.crt.
func caseEtc(t *testing.T, dir string, cs corefilecorpus.Case, migrated, caPEM []byte) string {
	t.Helper()
	etc := t.TempDir()
	coreCorefile := cs.CoreDNSCorefile
	if coreCorefile == "" {
		coreCorefile = cs.Corefile
	}
	copyFile(t, filepath.Join(dir, coreCorefile), filepath.Join(etc, "Corefile"))
	for name, src := range cs.Etc {
		src = filepath.Join(dir, src)
		dst := filepath.Join(etc, name)
		fi, err := os.Stat(src)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case fi.IsDir():
			if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
				t.Fatal(err)
			}
		case strings.HasSuffix(src, ".yaml"):
			var cm corev1.ConfigMap
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal(b, &cm); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			for k, v := range cm.Data {
				if err := os.WriteFile(filepath.Join(dst, k), []byte(v), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		default:
			copyFile(t, src, dst)
		}
	}
	for name, data := range map[string][]byte{"dnsd.yaml": migrated, "ca.crt": caPEM} {
		if err := os.WriteFile(filepath.Join(etc, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Readable by the servers whatever the umask of the test.
	_ = filepath.WalkDir(etc, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			_ = os.Chmod(p, map[bool]os.FileMode{true: 0o755, false: 0o644}[d.IsDir()])
		}
		return nil
	})
	return etc
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// pollIn asks q until the answer has a record, at most limit.
func pollIn(t *testing.T, s *side, addr string, q *dns.Msg, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		m, err := exchangeIn(s.ns, addr, "udp", q)
		if err == nil && m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s not answered within %s (last %v, %v)", s.name, q.Question[0].Name, limit, m, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a server's start, bounded above
	}
}

// diffRun is the comparison of one case.
type diffRun struct {
	t           *testing.T
	core, dnsd  *side
	addr        string
	cfg         daemon.Config
	start       time.Time
	queries     int
	seen        map[string]int
	unexplained []string
	// upstreams is upstreams.yaml.
	upstreams map[string][]string
	// reached are the evidence keys of the directives a query reached.
	reached map[string]bool
}

// ask sends q to both servers over proto and compares the replies; it
// returns them.
func (r *diffRun) ask(name string, qtype uint16, proto string) (d, c *dns.Msg) {
	t := r.t
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	r.queries++
	var err error
	if d, err = exchangeIn(r.dnsd.ns, r.addr, proto, m); err != nil {
		t.Fatalf("dnsd %s %s: %v", name, dns.TypeToString[qtype], err)
	}
	if c, err = exchangeIn(r.core.ns, r.addr, proto, m); err != nil {
		t.Fatalf("coredns %s %s: %v", name, dns.TypeToString[qtype], err)
	}
	r.compare(m.Question[0], proto, d, c)
	return d, c
}

// compare records a difference between d and c: the replies without TTLs
// must be equal, and the TTLs of equal records within the caches' rules
// (ttlMismatch).
func (r *diffRun) compare(q dns.Question, proto string, d, c *dns.Msg) {
	ds, cs := canonNoTTL(r.t, d, r.start), canonNoTTL(r.t, c, r.start)
	if ds == cs {
		if msg := ttlMismatch(d, c, r.cfg); msg != "" {
			r.unexplained = append(r.unexplained, fmt.Sprintf("%s %s over %s: TTLs differ: %s", q.Name, dns.TypeToString[q.Qtype], proto, msg))
		}
		return
	}
	if r.seen == nil {
		r.seen = map[string]int{}
	}
	for _, x := range migrateDifferences {
		if (x.when == nil || x.when(r.cfg)) && x.match(q, d, c) {
			r.seen[x.name]++
			return
		}
	}
	if i := slices.IndexFunc(deliberateDifferences, func(x deliberate) bool { return x.match(q, d, c) }); i >= 0 {
		r.seen[deliberateDifferences[i].name]++
		return
	}
	r.unexplained = append(r.unexplained, fmt.Sprintf("%s %s over %s:\n--- dnsd\n%s--- coredns\n%s", q.Name, dns.TypeToString[q.Qtype], proto, ds, cs))
}

// canonNoTTL is canon with every TTL set to 0; with t nil, SOA serials
// are zeroed unchecked (for comparing inside a match function).
func canonNoTTL(t *testing.T, m *dns.Msg, lo time.Time) string {
	m = m.Copy()
	for _, rrs := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range rrs {
			if rr.Header().Rrtype != dns.TypeOPT {
				rr.Header().Ttl = 0
			}
			if soa, ok := rr.(*dns.SOA); ok && t == nil {
				soa.Serial = 0
			}
		}
	}
	if t == nil {
		return renderReply(m)
	}
	return canon(t, m, lo, time.Now())
}

// ttlMismatch compares the TTLs of the answer records: equal within a
// second (both count down alike), except where a cache may have answered:
// CoreDNS's, which also holds cluster answers, caps them at its successTTL
// (dns-version's 28800 to 30) and counts down, and dnsd's does so for
// forwarded answers.
func ttlMismatch(d, c *dns.Msg, cfg daemon.Config) string {
	key := func(rr dns.RR) string {
		x := dns.Copy(rr)
		x.Header().Ttl = 0
		return x.String()
	}
	ttls := func(m *dns.Msg) map[string]uint32 {
		out := map[string]uint32{}
		for _, rr := range m.Answer {
			out[key(rr)] = rr.Header().Ttl
		}
		return out
	}
	near := func(a, b uint32) bool { return a <= b+1 && b <= a+1 }
	capTTL := uint32(cfg.Cache.SuccessTTL.D() / time.Second)
	dt, ct := ttls(d), ttls(c)
	for k, a := range dt {
		b := ct[k]
		// Without a cache both count alike; with one, either may answer
		// from an entry filled earlier: a TTL counted down from the
		// other's, capped at successTTL.
		if near(a, b) || !cfg.Cache.Disabled && (b <= min(a, capTTL)+1 || a <= min(b, capTTL)+1) {
			continue
		}
		return fmt.Sprintf("%s: dnsd %d, CoreDNS %d", strings.ReplaceAll(k, "\t", " "), a, b)
	}
	return ""
}

// run asks the case's query set and gathers the evidence of what each
// directive's translation reached.
func (r *diffRun) run(c client.Client, svcs []genService, cs corefilecorpus.Case, dir string) {
	t := r.t
	cl := r.cfg
	// The cluster zone: the generated Services, every record kind.
	qs := diffQueries(t, c, svcs, []string{"default", "kube-system", "gen0"})
	for i, q := range qs {
		proto := "udp"
		if i%4 == 3 {
			proto = "tcp"
		}
		r.ask(q.Name, q.Qtype, proto)
	}
	if d, c := r.ask("kubernetes.default.svc.cluster.local.", dns.TypeA, "udp"); answered(d) && answered(c) && d.Authoritative && c.Authoritative {
		r.reached["kubernetes"] = true
	}
	// Forwarded names, by route: the default upstreams and each stub.
	zones := []string{"example.com."}
	for _, s := range cl.Forward.Stubs {
		zones = append(zones, dns.Fqdn(s.Zone))
	}
	for _, z := range zones {
		for _, ty := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeMX} {
			r.ask("www."+z, ty, "udp")
		}
		r.ask("nxhost."+z, dns.TypeA, "udp")
		r.ask("nodata."+z, dns.TypeA, "tcp")
	}
	// The cache: the second ask must not reach the upstream.
	r.ask("cached.example.com.", dns.TypeA, "udp")
	r.ask("cached.example.com.", dns.TypeA, "udp")
	if r.core.count("cached.example.com. A") == 1 && r.dnsd.count("cached.example.com. A") == 1 {
		r.reached["cache"] = true
	}
	// The AAAA filter: an external name's AAAA answered NODATA by both, and
	// no upstream asked.
	if d, c := r.ask("aaaa.example.com.", dns.TypeAAAA, "udp"); nodataReply(d) && nodataReply(c) &&
		r.core.count("aaaa.example.com. AAAA") == 0 && r.dnsd.count("aaaa.example.com. AAAA") == 0 {
		r.reached["template"] = true
	}
	// Static records: every name of every block's entries and file.
	for _, b := range cl.Static {
		lines := slices.Clone(b.Entries)
		if b.HostsFile != "" {
			lines = append(lines, hostsLines(t, hostsPath(b.HostsFile, cs, dir))...)
		}
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			ip, err := netip.ParseAddr(f[0])
			if err != nil {
				continue
			}
			for _, n := range f[1:] {
				ty := dns.TypeA
				if ip.Is6() {
					ty = dns.TypeAAAA
				}
				d, c := r.ask(n, ty, "udp")
				if hasAddr(d, ip) && hasAddr(c, ip) {
					r.reached["hosts"] = true
				}
			}
			if rev, err := dns.ReverseAddr(ip.String()); err == nil {
				r.ask(rev, dns.TypePTR, "udp")
			}
		}
	}
	// Rewrites: the name of each rule (a name below a suffix).
	for _, rw := range cl.Rewrite {
		name := rw.From
		if rw.Match == "suffix" {
			name = "postgres." + rw.From
		}
		if rw.Match == "regex" {
			continue
		}
		if d, c := r.ask(name, dns.TypeA, "udp"); answered(d) && answered(c) {
			r.reached["rewrite:"+strings.ToLower(dns.Fqdn(rw.From))] = true
		}
		r.ask(name, dns.TypeAAAA, "udp")
	}
	// loadbalance: a headless Service's three addresses come in more than
	// one order from both.
	orders := map[string]map[string]bool{"dnsd": {}, "coredns": {}}
	for range 24 {
		d, c := r.ask("s2.gen0.svc.cluster.local.", dns.TypeA, "udp")
		orders["dnsd"][fmt.Sprint(d.Answer)] = true
		orders["coredns"][fmt.Sprint(c.Answer)] = true
	}
	if len(orders["dnsd"]) > 1 && len(orders["coredns"]) > 1 {
		r.reached["loadbalance"] = true
	}
	// errors: a query its upstream never answers fails in both (SERVFAIL)
	// and is logged as an error.
	var wg sync.WaitGroup
	replies := map[string]*dns.Msg{}
	var mu sync.Mutex
	m := new(dns.Msg)
	m.SetQuestion("timeout.example.com.", dns.TypeA)
	for _, s := range []*side{r.dnsd, r.core} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reply, err := exchangeIn(s.ns, r.addr, "udp", m)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				replies[s.name] = reply
			}
		}()
	}
	wg.Wait()
	r.queries++
	if replies["dnsd"] != nil && replies["coredns"] != nil {
		r.compare(m.Question[0], "udp", replies["dnsd"], replies["coredns"])
	} else {
		r.unexplained = append(r.unexplained, fmt.Sprintf("timeout.example.com. A: no reply (dnsd %v, CoreDNS %v)", replies["dnsd"] != nil, replies["coredns"] != nil))
	}
	if cl.Errors.Enabled && waitOutput(r.dnsd, `"level":"ERROR"`) && waitOutput(r.core, "[ERROR]") {
		r.reached["errors"] = true
	}
	// log: the query log of each names a query that its classes log.
	if cl.QueryLog.Enabled && waitOutput(r.dnsd, `"name":"nxhost.example.com."`) && waitOutput(r.core, "nxhost.example.com.") {
		r.reached["log"] = true
	}
	// loop: each server sent its loop probe (HINFO) to its upstream.
	hinfo := func(s *side) bool {
		for _, u := range s.ups {
			for _, q := range u.queries() {
				if strings.HasSuffix(q, " HINFO") {
					return true
				}
			}
		}
		return false
	}
	if hinfo(r.dnsd) && hinfo(r.core) {
		r.reached["loop"] = true
	}
	// Every upstream that both sides asked.
	for name := range r.dnsd.ups {
		if len(r.dnsd.ups[name].queries()) > 0 && len(r.core.ups[name].queries()) > 0 {
			r.reached["upstream:"+name] = true
		}
	}
	// HTTP: health, ready, metrics where each serves them.
	get := func(s *side, addr, path, want string) bool {
		code, body, err := httpGetIn(s.ns, "http://"+loopbackAddr(addr)+path)
		return err == nil && code == 200 && strings.Contains(body, want)
	}
	if get(r.dnsd, cl.HealthListen, "/health", "") && get(r.core, cl.HealthListen, "/health", "") {
		r.reached["health"] = true
	}
	if get(r.dnsd, cl.HealthListen, "/ready", "") && get(r.core, "127.0.0.1:8181", "/ready", "") {
		r.reached["ready"] = true
	}
	if get(r.dnsd, cl.MetricsListen, "/metrics", "poddns_") && get(r.core, cl.MetricsListen, "/metrics", "coredns_dns_requests_total") {
		r.reached["prometheus"] = true
	}
}

func answered(m *dns.Msg) bool { return m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0 }

func hasAddr(m *dns.Msg, ip netip.Addr) bool {
	for _, rr := range m.Answer {
		switch a := rr.(type) {
		case *dns.A:
			if x, ok := netip.AddrFromSlice(a.A.To4()); ok && x == ip {
				return true
			}
		case *dns.AAAA:
			if x, ok := netip.AddrFromSlice(a.AAAA); ok && x == ip {
				return true
			}
		}
	}
	return false
}

// loopbackAddr turns ":port" into 127.0.0.1:port.
func loopbackAddr(a string) string {
	h, p, err := net.SplitHostPort(a)
	if err != nil || h == "" || h == "0.0.0.0" || h == "::" {
		return net.JoinHostPort("127.0.0.1", p)
	}
	return a
}

// waitOutput waits up to 5s for s's output to contain want.
func waitOutput(s *side, want string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.out.String(), want) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond) // polling a log writer, bounded above
	}
	return true
}

// hostsPath is where a hosts file of the migrated config is on this
// machine: /etc/coredns/<name> is the case's file; others (/etc/hosts) are
// the host's, which the namespaces see through the overlay.
func hostsPath(p string, cs corefilecorpus.Case, dir string) string {
	if rest, ok := strings.CutPrefix(p, "/etc/coredns/"); ok {
		if src, ok := cs.Etc[rest]; ok {
			return filepath.Join(dir, src)
		}
	}
	return p
}

func hostsLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(strings.SplitN(sc.Text(), "#", 2)[0])
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// checkReach fails for every translated directive that no query reached.
func (r *diffRun) checkReach(res *migrate.Result) {
	t := r.t
	for _, it := range res.Translated {
		if why, ok := unobservable[it.Directive]; ok {
			t.Logf("%s: not observable by a query: %s", it, why)
			continue
		}
		keys := r.reachKeys(it)
		ok := false
		for _, k := range keys {
			ok = ok || r.reached[k]
		}
		if !ok {
			t.Errorf("translated directive %s (%s) was reached by no query (evidence wanted: one of %v; reached: %v)", it, it.Directive, keys, slices.Sorted(maps.Keys(r.reached)))
		}
	}
}

// reachKeys are the evidence keys that show a directive was reached: for
// forward, stubDomains and upstreamNameservers the upstreams they name (any
// one of them asked by both servers); for rewrite its rule; else its name.
func (r *diffRun) reachKeys(it migrate.Item) []string {
	switch it.Directive {
	case "forward", "stubDomains", "upstreamNameservers":
		ups := r.upstreams
		var keys []string
		for _, f := range strings.Fields(it.Text)[1:] {
			if strings.HasSuffix(f, "resolv.conf") {
				keys = append(keys, "upstream:resolver")
				continue
			}
			for name, addrs := range ups {
				for _, a := range addrs {
					if a == f || net.JoinHostPort(a, "53") == f || a == strings.TrimSuffix(f, ":53") {
						keys = append(keys, "upstream:"+name)
					}
				}
			}
		}
		return keys
	case "rewrite":
		f := strings.Fields(it.Text)
		for i, x := range f {
			if x == "exact" || x == "suffix" || x == "regex" {
				return []string{"rewrite:" + strings.ToLower(dns.Fqdn(strings.TrimPrefix(f[i+1], ".")))}
			}
		}
		return []string{"rewrite:" + strings.ToLower(dns.Fqdn(f[2]))}
	}
	return []string{it.Directive}
}

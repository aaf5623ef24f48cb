package e2e

// The namespace side of the stub-resolver tests. The test binary re-executes
// itself through `unshare --net --mount --propagation private`; TestMain sees
// childEnv and runs runChild instead of the tests. The child brings up lo,
// bind-mounts the rendered resolv.conf (and a fixed /etc/hosts and
// /etc/nsswitch.conf) over the files in /etc of its private mount namespace,
// serves a small zone on 127.0.0.53:53, runs the clients one after the other
// and writes every client's output and the queries it caused to a JSON file.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// childEnv names the spec file of a namespace child; only the test sets it.
const childEnv = "PODDNS_E2E_NETNS_CHILD"

// serverIP is the address the DNS server listens on inside the namespace, the
// address systemd-resolved uses on hosts: it never collides with anything
// there, because the namespace has its own loopback.
const serverIP = "127.0.0.53"

// childSpec is what the test asks a namespace child to do.
type childSpec struct {
	// HostNetNS and HostMntNS are the test process's namespaces
	// (readlink /proc/self/ns/...): the child refuses to touch anything
	// unless its own differ.
	HostNetNS, HostMntNS string
	// Mounts are bind mounts to make, source file over target file.
	Mounts []bindMount
	// WantResolvConf is what /etc/resolv.conf must read after the mounts.
	WantResolvConf string
	// IP and Mount are the ip(8) and mount(8) binaries.
	IP, Mount string
	// Lookups run one at a time, in order.
	Lookups []childLookup
	// Deadline bounds the whole child.
	Deadline time.Time
	// Out is the file the childResult is written to.
	Out string
}

type bindMount struct{ Source, Target string }

type childLookup struct {
	Client string   // "glibc" or "musl", for reports
	Argv   []string // the client command line
}

// childResult is what a namespace child reports.
type childResult struct {
	NetNS, MntNS string
	Runs         []clientRun
}

// clientRun is one client execution and the queries the server saw meanwhile.
type clientRun struct {
	Client   string
	Argv     []string
	Stdout   string
	Stderr   string
	ExitCode int
	Queries  []query
}

// query is one question the server received, in arrival order.
type query struct {
	Name  string // as received, fully qualified, lower-cased
	Type  string // "A", "AAAA", ...
	Proto string // "udp" or "tcp"
}

func (q query) String() string { return q.Name + " " + q.Type + "/" + q.Proto }

// runChild is the whole life of a namespace child; its exit status is the
// process's. Errors go to stderr, which the test shows.
func runChild(specPath string) int {
	if err := child(specPath); err != nil {
		fmt.Fprintln(os.Stderr, "e2e netns child:", err)
		return 1
	}
	return 0
}

func child(specPath string) error {
	data, err := os.ReadFile(specPath)
	if err != nil {
		return err
	}
	var spec childSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("spec %s: %w", specPath, err)
	}
	ctx, cancel := context.WithDeadline(context.Background(), spec.Deadline)
	defer cancel()

	// Never touch the host: a mount or a listener outside a namespace of our
	// own would land on the real machine.
	netNS, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return err
	}
	mntNS, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return err
	}
	if netNS == spec.HostNetNS || mntNS == spec.HostMntNS {
		return fmt.Errorf("not in private namespaces (net %s, mnt %s; the test's are %s, %s): refusing to mount or listen", netNS, mntNS, spec.HostNetNS, spec.HostMntNS)
	}
	res := childResult{NetNS: netNS, MntNS: mntNS}

	if err := run(ctx, spec.IP, "link", "set", "dev", "lo", "up"); err != nil {
		return err
	}
	for _, m := range spec.Mounts {
		// Private propagation (unshare --propagation private) keeps these
		// mounts in this namespace.
		if err := run(ctx, spec.Mount, "--bind", m.Source, m.Target); err != nil {
			return err
		}
	}
	got, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return err
	}
	if string(got) != spec.WantResolvConf {
		return fmt.Errorf("/etc/resolv.conf after the bind mount reads %q, want %q", got, spec.WantResolvConf)
	}

	srv, err := startServer(ctx, "DNS server", net.JoinHostPort(serverIP, "53"), answerZone)
	if err != nil {
		return err
	}
	defer srv.shutdown()

	for _, l := range spec.Lookups {
		srv.log.reset()
		r := clientRun{Client: l.Client, Argv: l.Argv}
		r.Stdout, r.Stderr, r.ExitCode, err = runClient(ctx, l.Argv)
		if err != nil {
			return fmt.Errorf("%s %q: %w", l.Client, l.Argv, err)
		}
		r.Queries = srv.log.snapshot()
		res.Runs = append(res.Runs, r)
	}

	out, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(spec.Out, out, 0o644)
}

// clientTimeout bounds one client; glibc's and musl's default timeouts (5 s,
// 2 attempts) only matter if a query goes unanswered, which a failure shows.
const clientTimeout = 30 * time.Second

// runClient runs a client with a clean environment: LOCALDOMAIN, RES_OPTIONS
// and HOSTALIASES would change what glibc or musl do.
func runClient(ctx context.Context, argv []string) (stdout, stderr string, code int, err error) {
	ctx, cancel := context.WithTimeout(ctx, clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return o.String(), e.String(), -1, fmt.Errorf("killed after %s: %w (stderr %q)", clientTimeout, ctx.Err(), e.String())
	case errors.As(err, &exit):
		return o.String(), e.String(), exit.ExitCode(), nil
	case err != nil:
		return o.String(), e.String(), -1, err
	}
	return o.String(), e.String(), 0, nil
}

func run(ctx context.Context, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// queryLog records questions in arrival order.
type queryLog struct {
	mu sync.Mutex
	qs []query
}

// maxLogged bounds the log; no case comes near it.
const maxLogged = 1000

func (l *queryLog) add(q query) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.qs) < maxLogged {
		l.qs = append(l.qs, q)
	}
}

func (l *queryLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.qs = nil
}

func (l *queryLog) snapshot() []query {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]query(nil), l.qs...)
}

// The zone the server answers from. Names in it exist; every other name is
// NXDOMAIN. An existing name without a record of the asked type gets NODATA.
// The addresses are data handed to the clients, never dialled.
const (
	webService  = "web.default.svc.cluster.local."
	webIP       = "10.96.0.20"
	externalAPI = "api.example.com."
	externalIP  = "192.0.2.10"
	gapIP       = "192.0.2.11"
)

var zone = map[string][]dns.RR{
	webService:  {mustRR(webService + " 30 IN A " + webIP)},
	externalAPI: {mustRR(externalAPI + " 300 IN A " + externalIP)},
	// Names without addresses: NODATA for A and AAAA.
	"nodata.example.com.":       {mustRR(`nodata.example.com. 300 IN TXT "no addresses"`)},
	"gap.example.corp.example.": {mustRR(`gap.example.corp.example. 300 IN TXT "no addresses"`)},
	"gap.example.":              {mustRR("gap.example. 300 IN A " + gapIP)},
}

func mustRR(s string) dns.RR {
	rr, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return rr
}

// soaFor is the SOA put in the authority section of a negative answer, so
// that resolvers see a well-formed NXDOMAIN/NODATA (RFC 2308).
func soaFor(name string) dns.RR {
	apex := "."
	for _, z := range []string{"cluster.local.", "example.com."} {
		if dns.IsSubDomain(z, name) {
			apex = z
			break
		}
	}
	return mustRR(apex + " 30 IN SOA ns.e2e.test. hostmaster.e2e.test. 1 7200 1800 86400 30")
}

// server is a DNS server of the tests, serving on UDP and TCP: answer
// makes the reply to a query of one question (name is its name in lower
// case) and says whether the question goes in log; a query of another
// number of questions gets FORMERR.
type server struct {
	answer  func(r *dns.Msg, q dns.Question, name string) (reply *dns.Msg, logged bool)
	log     *queryLog
	servers listeners
}

func (s *server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	m, logged := s.answer(r, q, name)
	if logged {
		s.log.add(query{Name: name, Type: dns.TypeToString[q.Qtype], Proto: w.LocalAddr().Network()})
	}
	_ = w.WriteMsg(m)
}

// startServer serves answer on addr over UDP and TCP; what names the
// server in an error.
func startServer(ctx context.Context, what, addr string, answer func(r *dns.Msg, q dns.Question, name string) (*dns.Msg, bool)) (*server, error) {
	s := &server{answer: answer, log: &queryLog{}}
	servers, err := serveDNS(ctx, addr, s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	s.servers = servers
	return s, nil
}

func (s *server) shutdown() { s.servers.shutdown() }

// answerZone answers from zone, every question logged.
func answerZone(r *dns.Msg, q dns.Question, name string) (*dns.Msg, bool) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = true
	rrs, ok := zone[name]
	if !ok {
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soaFor(name)}
		return m, true
	}
	for _, rr := range rrs {
		if rr.Header().Rrtype == q.Qtype {
			c := dns.Copy(rr)
			c.Header().Name = q.Name // keep the client's spelling
			m.Answer = append(m.Answer, c)
		}
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{soaFor(name)}
	}
	return m, true
}

// listeners are the UDP and TCP servers of one handler.
type listeners []*dns.Server

// serveDNS serves h on addr over UDP and TCP and returns once both listen
// (within 10 s or ctx), or with nothing left running.
func serveDNS(ctx context.Context, addr string, h dns.Handler) (listeners, error) {
	var ls listeners
	for _, network := range []string{"udp", "tcp"} {
		started := make(chan struct{})
		failed := make(chan error, 1)
		ds := &dns.Server{Addr: addr, Net: network, Handler: h, NotifyStartedFunc: func() { close(started) }}
		go func() { failed <- ds.ListenAndServe() }()
		wait, cancel := context.WithTimeout(ctx, 10*time.Second)
		select {
		case <-started:
			cancel()
			ls = append(ls, ds)
		case err := <-failed:
			cancel()
			ls.shutdown()
			return nil, fmt.Errorf("%s/%s: %w", addr, network, err)
		case <-wait.Done():
			cancel()
			ls.shutdown()
			return nil, fmt.Errorf("%s/%s did not start: %w", addr, network, wait.Err())
		}
	}
	return ls, nil
}

func (ls listeners) shutdown() {
	for _, ds := range ls {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = ds.ShutdownContext(ctx)
		cancel()
	}
}

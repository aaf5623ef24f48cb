package forward_test

// The spoofing acceptance test. It runs in a network namespace of its own
// (the test binary re-executes itself under `unshare --net`): the forger
// sprays about 27 million datagrams at random ports, which on the host's
// loopback could land on other programs' sockets.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/serve/cache"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/forward"
)

// spoofChildEnv holds the host's network namespace in the child; only
// TestSpoofing sets it.
const spoofChildEnv = "PODDNS_FORWARD_SPOOF_CHILD"

// spoofFullEnv, set to 1, runs the acceptance's full load: 20 queries, 20
// random ports each, 27.5 million forged packets (about 30 s at 1M packets/s
// on loopback; several minutes on a loaded machine). By default the test
// runs 5 queries with 2 random ports each (1 million packets): the same
// attack, a bound load for make test.
const spoofFullEnv = "PODDNS_SPOOF_FULL"

// TestSpoofing is the acceptance test of the forwarder against a blind
// forger who knows the upstream's address and the query name, not the
// source port: for 20 slow queries it sprays all 65,536 IDs, from the
// upstream's own address and port, at the port dnsd used for its previous
// forwarded query and at 20 random ephemeral ports, before the upstream's
// real reply (spoofFullEnv; fewer by default). No forged answer may be
// returned or cached. A control query first shows the forger is real: told
// the live port, with 0x20 off, it wins.
//
// The forwarder runs with 0x20 on: without it, each query's spray would
// hit the live port by chance with probability 21/28,232 (Linux's default
// range) and then win, 1.5% per run of 20 queries; 0x20 on a name of 30+
// letters makes such a hit worthless. The source ports alone are measured
// by TestSourcePortsRandom. Today's code (one pooled socket, no 0x20)
// answers the forgery from the second query on.
func TestSpoofing(t *testing.T) {
	if host := os.Getenv(spoofChildEnv); host != "" {
		spoofChild(t, host)
		return
	}
	testenv.RequireRoot(t)
	tools := testenv.RequireCommand(t, "unshare", "ip")
	hostNS, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tools[0], "--net", "--", os.Args[0], "-test.run=^TestSpoofing$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), spoofChildEnv+"="+hostNS, "PODDNS_IP="+tools[1])
	out, err := cmd.CombinedOutput()
	t.Logf("namespace child:\n%s", out)
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestSpoofing")) {
		t.Fatalf("namespace child: %v", err)
	}
}

// forger sprays forged replies from the upstream's socket.
type forger struct {
	pc      *ipv4.PacketConn
	packets [][]byte // one per ID
	sent    int
}

func newForger(t *testing.T, pc net.PacketConn, name string) *forger {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Response, m.RecursionAvailable = true, true
	m.Answer = dnstest.RRs(name + " 3600 IN A 6.6.6.6")
	base, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	f := &forger{pc: ipv4.NewPacketConn(pc), packets: make([][]byte, 65536)}
	for id := range f.packets {
		p := bytes.Clone(base)
		p[0], p[1] = byte(id>>8), byte(id)
		f.packets[id] = p
	}
	return f
}

// spray sends every ID to 127.0.0.1:port as fast as loopback takes them.
func (f *forger) spray(t *testing.T, port int) { f.sprayPaced(t, port, 1024, 0) }

// sprayPaced sends every ID to 127.0.0.1:port in batches of batch packets
// (a power of two), pausing after each. Unpaced, loopback outruns the
// reader: a socket's receive buffer holds a few hundred datagrams, so on a
// busy machine, where the reader is seldom scheduled, nearly every packet
// of a spray is dropped, the right ID's included.
func (f *forger) sprayPaced(t *testing.T, port, batch int, pause time.Duration) {
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	msgs := make([]ipv4.Message, batch)
	for i := 0; i < len(f.packets); i += batch {
		if pause > 0 && i > 0 {
			time.Sleep(pause)
		}
		for j := range msgs {
			msgs[j] = ipv4.Message{Buffers: [][]byte{f.packets[i+j]}, Addr: dst}
		}
		for off := 0; off < batch; {
			n, err := f.pc.WriteBatch(msgs[off:], 0)
			if err != nil {
				// The socket buffer is full: loopback delivers
				// synchronously, so this is rare; retry.
				time.Sleep(100 * time.Microsecond)
				continue
			}
			off += n
			f.sent += n
		}
	}
}

func ephemeralRange(t *testing.T) (int, int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	lo, _ := strconv.Atoi(f[0])
	hi, _ := strconv.Atoi(f[1])
	return lo, hi
}

func spoofChild(t *testing.T, hostNS string) {
	ns, err := os.Readlink("/proc/self/ns/net")
	if err != nil || ns == hostNS {
		t.Fatalf("not in a network namespace of its own (%s, host %s, %v): refusing to spray", ns, hostNS, err)
	}
	if out, err := exec.Command(os.Getenv("PODDNS_IP"), "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	lo, hi := ephemeralRange(t)
	// Each query asks a name of its own, which the forger knows: a cache
	// hit cannot hide an attempt. 30+ letters each.
	nameOf := func(i int) string { return fmt.Sprintf("q%d-poisonme-abcdefghijklmnopqrstuvwxyz.example.", i) }

	// The upstream: it reports each query's source port and waits for the
	// forger before answering with the real address.
	pc, err := net.ListenPacket("udp", "127.0.0.53:53")
	if err != nil {
		t.Fatal(err)
	}
	type query struct {
		port  int
		reply []byte
		from  net.Addr
	}
	queries := make(chan query)
	dnstest.ServeRawUDP(t, pc, func(q *dns.Msg, from net.Addr) []*dns.Msg {
		if len(q.Question) != 1 {
			return nil
		}
		m := new(dns.Msg)
		m.SetReply(q)
		m.RecursionAvailable = true
		m.Answer = dnstest.RRs(q.Question[0].Name + " 86400 IN A 192.0.2.1") // cached for the whole run
		b, _ := m.Pack()
		select {
		case queries <- query{port: from.(*net.UDPAddr).Port, reply: b, from: from}:
		case <-t.Context().Done():
		}
		return nil // answered by the test, after the forger
	})
	// ask sends name to h and returns the answer's address, or the rcode.
	ask := func(h interface {
		ServeDNS(context.Context, dns.ResponseWriter, *dns.Msg) (int, error)
	}, name string) <-chan string {
		res := make(chan string, 1)
		go func() {
			w := &dnstest.Recorder{}
			rc, err := h.ServeDNS(context.Background(), w, dnstest.Query(name, dns.TypeA, 0))
			switch {
			case err != nil || w.Msg == nil:
				res <- fmt.Sprintf("%s %v", dns.RcodeToString[rc], err)
			case len(w.Msg.Answer) != 1:
				res <- fmt.Sprintf("%s %v", dns.RcodeToString[w.Msg.Rcode], w.Msg.Answer)
			default:
				res <- w.Msg.Answer[0].(*dns.A).A.String()
			}
		}()
		return res
	}
	// Tries long enough for the slowest spray: the upstream answers only
	// after it.
	opts := forward.Defaults()
	opts.Upstreams = []string{"127.0.0.53:53"}
	opts.TryTimeout, opts.Deadline, opts.HealthCheck = configfile.Duration(10*time.Minute), configfile.Duration(10*time.Minute), configfile.Duration(time.Hour)

	// Control: a forger told the live port wins against the ID alone.
	{
		o := opts
		f, err := forward.New(o, forward.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		fg := newForger(t, pc, nameOf(-1))
		res := ask(f, nameOf(-1))
		q := <-queries
		start := time.Now()
		// The control must not lose to the machine's load: the forger
		// sprays in small paced batches, so the receive buffer is not
		// what decides, and again until it wins (bounded: 20 sprays or
		// 2 minutes). It failed a CI run on 2 busy cores with five
		// unpaced sprays.
		var got string
		for i := 0; i < 20 && time.Since(start) < 2*time.Minute; i++ {
			fg.sprayPaced(t, q.port, 64, 200*time.Microsecond)
			select {
			case got = <-res:
			default:
				continue
			}
			break
		}
		if got == "" {
			pc.WriteTo(q.reply, q.from)
			got = <-res
		}
		if got != "6.6.6.6" {
			t.Fatalf("control: a forger spraying every ID at the live port got %q answered, want the forgery 6.6.6.6: the forger does not reach the forwarder", got)
		}
		f.Close()
		t.Logf("control: the forger knowing the port poisoned the answer (%d packets in %v)", fg.sent, time.Since(start).Round(time.Millisecond))
	}

	o := opts
	f, err := forward.New(o, forward.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := cache.New(cache.Defaults(), cache.Deps{Next: f})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A first query gives the forger a previous port.
	res := ask(f, nameOf(0))
	prev := (<-queries)
	pc.WriteTo(prev.reply, prev.from)
	<-res
	prevPort := prev.port

	nq, ports := 5, 2
	if os.Getenv(spoofFullEnv) == "1" {
		nq, ports = 20, 20
	}
	start, sent := time.Now(), 0
	hitLive := 0
	for i := 1; i <= nq; i++ {
		fg := newForger(t, pc, nameOf(i))
		res := ask(c, nameOf(i))
		q := <-queries
		targets := []int{prevPort}
		for range ports {
			targets = append(targets, lo+rand.IntN(hi-lo+1))
		}
		for _, p := range targets {
			if p == q.port {
				hitLive++
			}
			fg.spray(t, p)
		}
		sent += fg.sent
		pc.WriteTo(q.reply, q.from)
		if got := <-res; got != "192.0.2.1" {
			t.Errorf("query %d: answered %q, want the upstream's 192.0.2.1 (live port %d, sprayed %v)", i, got, q.port, targets)
		}
		// The answer is cached now: it must be the real one.
		prevPort = q.port
	}
	// Every answer is cached now: each must be the real one (a forgery
	// accepted after the client's answer would show here).
	for i := 1; i <= nq; i++ {
		if got := <-ask(c, nameOf(i)); got != "192.0.2.1" {
			t.Errorf("query %d: cached %q, want 192.0.2.1", i, got)
		}
	}
	t.Logf("%d queries, previous port and %d random ports each: %d forged packets in %v; the spray covered the live port %d times", nq, ports, sent, time.Since(start).Round(time.Millisecond), hitLive)
}

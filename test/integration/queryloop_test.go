package integration

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// The API-server fault tests (TestDNSAPIServerRestart,
// TestDNSScaleAPIRestart) query dnsd all through the fault with one query
// loop, counting its answers per phase of the fault.

// Phases of an API-server fault, for the per-phase counts.
const (
	phaseBefore   = iota // API server up, before the stop
	phaseStopping        // SIGTERM sent, until the process is gone
	phaseDown            // no API server process, until the restart is healthy
	phaseAfter           // API server restarted
	numPhases
)

var phaseNames = [numPhases]string{"before stop", "graceful stop", "API down", "after restart"}

// nameCheck is a query and the answer it must get.
type nameCheck struct {
	q    *dns.Msg
	want []dns.RR
}

// answered reports whether m is the expected answer.
func (c nameCheck) answered(m *dns.Msg) bool {
	return m.Rcode == dns.RcodeSuccess && dnstest.Diff(m.Answer, c.want) == ""
}

// loopCounts are the answers of the query loop in one phase.
type loopCounts struct {
	ok, nxdomain, servfail, otherRcode, wrong, errors atomic.Int64
}

// queryLoop is the query loop: UDP clients asking the checks in turn until
// stopped or until their cap. Set phase as the fault goes on.
type queryLoop struct {
	phase  atomic.Int32
	counts [numPhases]loopCounts
	end    time.Time // the cap
	stop   func()    // stops the clients and waits for them; stopped at cleanup too

	mu       sync.Mutex
	failures []string // the first 20
}

// startQueryLoop starts clients clients asking addr the checks in turn,
// each query bounded by timeout, pausing pause between queries (pacing the
// load), for at most limit.
func startQueryLoop(t *testing.T, addr string, checks []nameCheck, clients int, timeout, pause, limit time.Duration) *queryLoop {
	l := &queryLoop{end: time.Now().Add(limit)}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &dns.Client{Net: "udp", Timeout: timeout}
			for i := g; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if time.Now().After(l.end) {
					return
				}
				l.query(cl, addr, checks[i%len(checks)])
				time.Sleep(pause)
			}
		}()
	}
	l.stop = sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(l.stop) // on an early Fatal too
	return l
}

// query asks ch once and counts the answer in the current phase.
func (l *queryLoop) query(cl *dns.Client, addr string, ch nameCheck) {
	p := l.phase.Load()
	n := &l.counts[p]
	m, _, err := cl.Exchange(ch.q.Copy(), addr)
	var bad string
	switch {
	case err != nil:
		n.errors.Add(1)
		bad = err.Error()
	case m.Rcode == dns.RcodeNameError:
		n.nxdomain.Add(1)
		bad = "NXDOMAIN"
	case m.Rcode == dns.RcodeServerFailure:
		n.servfail.Add(1)
		bad = "SERVFAIL"
	case m.Rcode != dns.RcodeSuccess:
		n.otherRcode.Add(1)
		bad = "rcode " + dns.RcodeToString[m.Rcode]
	case dnstest.Diff(m.Answer, ch.want) != "":
		n.wrong.Add(1)
		bad = "wrong answer:\n" + dnstest.Diff(m.Answer, ch.want)
	default:
		n.ok.Add(1)
	}
	if bad != "" {
		l.mu.Lock()
		if len(l.failures) < 20 {
			l.failures = append(l.failures, fmt.Sprintf("[%s] %s: %s", phaseNames[p], ch.q.Question[0].Name, bad))
		}
		l.mu.Unlock()
	}
}

// report logs the counts of each phase and fails the test with each
// failure recorded. Call it once the loop is stopped.
func (l *queryLoop) report(t *testing.T) {
	t.Helper()
	for p := range numPhases {
		n := &l.counts[p]
		t.Logf("%-13s answered correctly %6d, NXDOMAIN %d, SERVFAIL %d, other rcode %d, wrong %d, errors/timeouts %d",
			phaseNames[p], n.ok.Load(), n.nxdomain.Load(), n.servfail.Load(), n.otherRcode.Load(), n.wrong.Load(), n.errors.Load())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.failures {
		t.Error(f)
	}
}

package serve

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestUDPWorkersRetire: after a burst of blocking queries the workers
// beyond the base count retire.
func TestUDPWorkersRetire(t *testing.T) {
	n := 4 * baseUDPWorkers
	release := make(chan struct{})
	h := HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		<-release
		m := new(dns.Msg)
		m.SetReply(r)
		return dns.RcodeSuccess, w.WriteMsg(m)
	})
	s, err := NewServer(Options{Addr: "127.0.0.1:0", Handler: h, UDPSockets: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	l := s.udp[0]

	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
			m := new(dns.Msg)
			m.SetQuestion("a.example.", dns.TypeA)
			c.Exchange(m, s.Addr())
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for int(l.workers.Load()) < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling the pool's growth, bounded above
	}
	if w := int(l.workers.Load()); w < n {
		t.Fatalf("%d workers for %d blocked queries", w, n)
	}
	close(release)
	wg.Wait()
	deadline = time.Now().Add(5 * time.Second)
	for l.workers.Load() > 2*baseUDPWorkers && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling the retirement, bounded above
	}
	if w := l.workers.Load(); w > 2*baseUDPWorkers {
		t.Errorf("%d workers after the burst, want at most %d", w, 2*baseUDPWorkers)
	}
}

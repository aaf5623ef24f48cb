package serve

import (
	"context"
	"fmt"
	"net"
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

// TestUDPBlockingHandsOff: a handler that calls Blocking before it waits
// hands its socket to another worker at once: with the watcher off, the
// queries after a blocked one are answered only thanks to Blocking (without
// it the socket's only reader waits with the handler, and they time out).
func TestUDPBlockingHandsOff(t *testing.T) {
	pc, err := listenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	l, err := newUDPLoop(pc.(*net.UDPConn), func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) {
		if r.Question[0].Name == "slow.example." {
			Blocking(ctx)
			close(entered)
			<-release
		}
		m := new(dns.Msg)
		m.SetReply(r)
		_ = w.WriteMsg(m)
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.stall = 0
	l.start()
	addr := pc.LocalAddr().String()
	defer func() {
		l.close()
		if err := l.wait(context.Background()); err != nil {
			t.Error(err)
		}
	}()

	slow := make(chan error, 1)
	go func() {
		m := new(dns.Msg)
		m.SetQuestion("slow.example.", dns.TypeA)
		_, _, err := (&dns.Client{Net: "udp", Timeout: 10 * time.Second}).Exchange(m, addr)
		slow <- err
	}()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("the slow query did not reach the handler")
	}
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	for i := range 20 {
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("q%d.example.", i), dns.TypeA)
		if _, _, err := c.Exchange(m, addr); err != nil {
			close(release)
			t.Fatalf("query %d while a handler that called Blocking waits: %v", i, err)
		}
	}
	close(release)
	if err := <-slow; err != nil {
		t.Errorf("the slow query: %v", err)
	}
}

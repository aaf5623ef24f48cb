package loadbalance_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/loadbalance"
)

// TestPackedShuffled: a packed NOERROR reply (a cache hit) is shuffled as a
// message is, CNAME first; a packed NXDOMAIN is not asked to be.
func TestPackedShuffled(t *testing.T) {
	answer := dnstest.RRs("www.example. 60 IN CNAME lb.example.")
	for i := range 6 {
		answer = append(answer, dnstest.RR(fmt.Sprintf("lb.example. 60 IN A 192.0.2.%d", i)))
	}
	var shuffled bool
	rcode := dns.RcodeSuccess
	lb, err := loadbalance.New(loadbalance.Config{}, loadbalance.Deps{Next: serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := serve.NewRequest(w, r).Reply(rcode)
		m.Answer = answer
		pr := &dnstest.PackedReply{M: m}
		err := serve.WritePacked(w, pr.Packed())
		if pr.MsgCalls.Load() != 0 {
			t.Error("the packed reply was not passed on packed")
		}
		return rcode, err
	})})
	if err != nil {
		t.Fatal(err)
	}
	h := &shuffleSpy{Handler: lb, saw: &shuffled}
	firsts := map[string]bool{}
	for range 32 {
		rec := &dnstest.Recorder{}
		serve.Handle(context.Background(), h, rec, dnstest.Query("www.example.", dns.TypeA, 0))
		if len(rec.Msg.Answer) != 7 || rec.Msg.Answer[0].Header().Rrtype != dns.TypeCNAME {
			t.Fatalf("reply %v: want the CNAME first and 6 addresses", rec.Msg.Answer)
		}
		firsts[rec.Msg.Answer[1].String()] = true
	}
	if len(firsts) < 2 {
		t.Errorf("32 packed replies all had %v first: not shuffled", firsts)
	}
	rcode = dns.RcodeNameError
	shuffled = false
	serve.Handle(context.Background(), h, &dnstest.Recorder{}, dnstest.Query("www.example.", dns.TypeA, 0))
	if shuffled {
		t.Error("a packed NXDOMAIN was shuffled")
	}
}

// shuffleSpy notes whether a packed reply written below it asks for a
// shuffle.
type shuffleSpy struct {
	serve.Handler
	saw *bool
}

func (s *shuffleSpy) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	return s.Handler.ServeDNS(ctx, &spyWriter{ResponseWriter: w, saw: s.saw}, r)
}

type spyWriter struct {
	dns.ResponseWriter
	saw *bool
}

func (w *spyWriter) WritePacked(p *serve.Packed) error {
	if p.Shuffle != nil {
		*w.saw = true
	}
	return serve.WritePacked(w.ResponseWriter, p)
}

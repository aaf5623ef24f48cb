package serve_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

const qname = "a.example."

// answerA writes n A records for the question.
func answerA(n int) serve.HandlerFunc {
	return func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := serve.NewRequest(w, r).Reply(dns.RcodeSuccess)
		for i := range n {
			m.Answer = append(m.Answer, dnstest.RR(fmt.Sprintf("%s 30 IN A 10.0.%d.%d", r.Question[0].Name, i/250, i%250+1)))
		}
		return dns.RcodeSuccess, w.WriteMsg(m)
	}
}

func rcodeOnly(rcode int, err error) serve.HandlerFunc {
	return func(context.Context, dns.ResponseWriter, *dns.Msg) (int, error) { return rcode, err }
}

func TestHandleContract(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name      string
		h         serve.Handler
		wantRcode int // of the reply written
		wantAA    bool
		wantErr   bool
	}{
		{"handler writes", answerA(1), dns.RcodeSuccess, true, false},
		{"SERVFAIL not written", rcodeOnly(dns.RcodeServerFailure, nil), dns.RcodeServerFailure, false, false},
		{"REFUSED not written", rcodeOnly(dns.RcodeRefused, nil), dns.RcodeRefused, false, false},
		{"FORMERR not written", rcodeOnly(dns.RcodeFormatError, nil), dns.RcodeFormatError, false, false},
		{"NOTIMP not written", rcodeOnly(dns.RcodeNotImplemented, nil), dns.RcodeNotImplemented, false, false},
		{"NXDOMAIN claimed, nothing written", rcodeOnly(dns.RcodeNameError, nil), dns.RcodeServerFailure, false, true},
		{"error", rcodeOnly(dns.RcodeServerFailure, boom), dns.RcodeServerFailure, false, true},
		{"end of chain", serve.Chain(nil), dns.RcodeRefused, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &dnstest.Recorder{}
			_, err := serve.Handle(t.Context(), tc.h, w, dnstest.Query(qname, dns.TypeA, 0))
			if (err != nil) != tc.wantErr {
				t.Errorf("err = %v, want error %v", err, tc.wantErr)
			}
			var he *serve.Error
			if err != nil && (!errors.As(err, &he) || he.Handler != tc.h.Name()) {
				t.Errorf("err = %#v, want a *serve.Error naming %q", err, tc.h.Name())
			}
			if w.Writes != 1 {
				t.Fatalf("%d replies written, want 1", w.Writes)
			}
			if w.Msg.Rcode != tc.wantRcode || w.Msg.Authoritative != tc.wantAA || w.Msg.Id == 0 || !w.Msg.Response {
				t.Errorf("reply rcode %s AA %v, want %s AA %v", dns.RcodeToString[w.Msg.Rcode], w.Msg.Authoritative, dns.RcodeToString[tc.wantRcode], tc.wantAA)
			}
			if len(w.Msg.Question) != 1 || w.Msg.Question[0].Name != qname {
				t.Errorf("question %v, want the query's", w.Msg.Question)
			}
		})
	}
	if _, err := serve.Handle(t.Context(), rcodeOnly(dns.RcodeServerFailure, boom), &dnstest.Recorder{}, dnstest.Query(qname, dns.TypeA, 0)); !errors.Is(err, boom) {
		t.Errorf("Handle error %v does not wrap the handler's", err)
	}
}

func TestHandleRejectsBeforeChain(t *testing.T) {
	called := false
	h := serve.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		called = true
		return answerA(1)(ctx, w, r)
	})
	notify := dnstest.Query(qname, dns.TypeSOA, 0)
	notify.Opcode = dns.OpcodeNotify
	noQ := dnstest.Query(qname, dns.TypeA, 0)
	noQ.Question = nil
	twoQ := dnstest.Query(qname, dns.TypeA, 0)
	twoQ.Question = append(twoQ.Question, twoQ.Question[0])
	edns1 := dnstest.Query(qname, dns.TypeA, 1232)
	edns1.IsEdns0().SetVersion(1)
	resp := dnstest.Query(qname, dns.TypeA, 0)
	resp.Response = true
	// RFC 6891 §6.1.1: more than one OPT, or an OPT outside the
	// additional section, is FORMERR.
	twoOPT := dnstest.Query(qname, dns.TypeA, 1232)
	twoOPT.Extra = append(twoOPT.Extra, newOPT())
	optInAnswer := dnstest.Query(qname, dns.TypeA, 0)
	optInAnswer.Answer = append(optInAnswer.Answer, newOPT())
	optInAuthority := dnstest.Query(qname, dns.TypeA, 1232)
	optInAuthority.Ns = append(optInAuthority.Ns, newOPT())
	optNotRoot := dnstest.Query(qname, dns.TypeA, 0)
	optNotRoot.Extra = append(optNotRoot.Extra, newOPT())
	optNotRoot.Extra[0].Header().Name = "example."
	for _, tc := range []struct {
		name   string
		q      *dns.Msg
		writes int
		rcode  int
	}{
		{"notify", notify, 1, dns.RcodeNotImplemented},
		{"no question", noQ, 1, dns.RcodeFormatError},
		{"two questions", twoQ, 1, dns.RcodeFormatError},
		{"EDNS version 1", edns1, 1, dns.RcodeBadVers},
		{"a response", resp, 0, 0},
		{"two OPT records", twoOPT, 1, dns.RcodeFormatError},
		{"OPT in the answer section", optInAnswer, 1, dns.RcodeFormatError},
		{"OPT in the authority section", optInAuthority, 1, dns.RcodeFormatError},
		{"OPT not owned by the root", optNotRoot, 1, dns.RcodeFormatError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			called = false
			w := &dnstest.Recorder{}
			serve.Handle(t.Context(), h, w, tc.q)
			if called {
				t.Error("the chain was called")
			}
			if w.Writes != tc.writes {
				t.Fatalf("%d replies written, want %d", w.Writes, tc.writes)
			}
			if tc.writes == 0 {
				return
			}
			if w.Msg.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[w.Msg.Rcode], dns.RcodeToString[tc.rcode])
			}
			if _, err := w.Msg.Pack(); err != nil {
				t.Errorf("reply does not pack: %v", err)
			}
		})
	}
}

func newOPT() *dns.OPT {
	o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	o.SetUDPSize(1232)
	return o
}

func TestFitCopiesBeforeTruncating(t *testing.T) {
	// A handler that writes one shared message, as a cache would.
	shared := new(dns.Msg)
	shared.SetQuestion(qname, dns.TypeA)
	shared.Response = true
	for i := range 100 {
		shared.Answer = append(shared.Answer, dnstest.RR(fmt.Sprintf("%s 30 IN A 10.0.0.%d", qname, i+1)))
	}
	before := shared.String()
	h := serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := *shared // a shallow copy sharing the sections, like a cache hit
		m.Id = r.Id
		return dns.RcodeSuccess, w.WriteMsg(&m)
	})
	w := &dnstest.Recorder{}
	serve.Handle(t.Context(), h, w, dnstest.Query(qname, dns.TypeA, 1232))
	if !w.Msg.Truncated || len(w.Msg.Answer) == 100 || w.Msg.IsEdns0() == nil {
		t.Errorf("reply TC %v with %d answers and OPT %v, want truncated with OPT", w.Msg.Truncated, len(w.Msg.Answer), w.Msg.IsEdns0())
	}
	if after := shared.String(); after != before {
		t.Errorf("the handler's message was modified:\n%s\nwant\n%s", after, before)
	}
}

func TestFitOPT(t *testing.T) {
	withOPT := serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := serve.NewRequest(w, r).Reply(dns.RcodeSuccess)
		m.SetEdns0(4096, false)
		return dns.RcodeSuccess, w.WriteMsg(m)
	})
	for _, tc := range []struct {
		name    string
		h       serve.Handler
		bufsize uint16
		wantOPT bool
	}{
		{"query with OPT gets one", answerA(1), 1232, true},
		{"query without OPT gets none", withOPT, 0, false},
		{"OPT kept", withOPT, 512, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &dnstest.Recorder{}
			serve.Handle(t.Context(), tc.h, w, dnstest.Query(qname, dns.TypeA, tc.bufsize))
			if got := w.Msg.IsEdns0() != nil; got != tc.wantOPT {
				t.Errorf("reply has OPT %v, want %v", got, tc.wantOPT)
			}
		})
	}
}

func TestRequest(t *testing.T) {
	q := dnstest.Query("WWW.Example.ORG.", dns.TypeAAAA, 0)
	r := serve.NewRequest(&dnstest.Recorder{TCP: true}, q)
	if r.Name() != "www.example.org." || r.QName() != "WWW.Example.ORG." || r.QType() != dns.TypeAAAA {
		t.Errorf("Name %q QName %q QType %d", r.Name(), r.QName(), r.QType())
	}
	if r.Proto() != "tcp" || r.Size() != dns.MaxMsgSize || r.Family() != 1 || r.IP().String() != "10.240.0.1" {
		t.Errorf("Proto %q Size %d Family %d IP %s", r.Proto(), r.Size(), r.Family(), r.IP())
	}
	for _, tc := range []struct {
		bufsize uint16
		want    int
	}{{0, 512}, {100, 512}, {1000, 1000}, {4096, serve.MaxUDPSize}} {
		if got := serve.NewRequest(&dnstest.Recorder{}, dnstest.Query("a.", dns.TypeA, tc.bufsize)).Size(); got != tc.want {
			t.Errorf("UDP size with EDNS0 buffer %d = %d, want %d", tc.bufsize, got, tc.want)
		}
	}
	if q.Question[0].Name != "WWW.Example.ORG." {
		t.Error("Request modified the query")
	}
}

func TestChainOrder(t *testing.T) {
	var order []string
	p := func(name string) serve.Plugin {
		return func(next serve.Handler) serve.Handler {
			return serve.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
				order = append(order, name)
				return serve.NextOrFailure(ctx, name, next, w, r)
			})
		}
	}
	h := serve.Chain(answerA(1), p("first"), p("second"), p("third"))
	w := &dnstest.Recorder{}
	serve.Handle(t.Context(), h, w, dnstest.Query(qname, dns.TypeA, 0))
	if want := []string{"first", "second", "third"}; !slices.Equal(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
	if len(w.Msg.Answer) != 1 {
		t.Errorf("the last handler did not answer: %v", w.Msg)
	}
	rcode, err := serve.NextOrFailure(t.Context(), "lonely", nil, w, dnstest.Query(qname, dns.TypeA, 0))
	if rcode != dns.RcodeServerFailure || !errors.Is(err, serve.ErrNoNextHandler) || !strings.Contains(err.Error(), "lonely") {
		t.Errorf("NextOrFailure(nil) = %d, %v", rcode, err)
	}
}

func TestAtomic(t *testing.T) {
	a := serve.NewAtomic(answerA(1))
	addr := dnstest.StartServer(t, a)
	if m := dnstest.Exchange(t, addr, "udp", dnstest.Query(qname, dns.TypeA, 0)); len(m.Answer) != 1 {
		t.Fatalf("before Store: %d answers, want 1", len(m.Answer))
	}
	a.Store(answerA(2))
	if m := dnstest.Exchange(t, addr, "udp", dnstest.Query(qname, dns.TypeA, 0)); len(m.Answer) != 2 {
		t.Fatalf("after Store: %d answers, want 2", len(m.Answer))
	}
}

func TestServerUDPAndTCP(t *testing.T) {
	addr := dnstest.StartServer(t, answerA(100))
	for _, tc := range []struct {
		proto     string
		truncated bool
	}{{"udp", true}, {"tcp", false}} {
		m := dnstest.Exchange(t, addr, tc.proto, dnstest.Query(qname, dns.TypeA, 0))
		if m.Truncated != tc.truncated || (!tc.truncated && len(m.Answer) != 100) {
			t.Errorf("%s: TC %v with %d answers, want TC %v", tc.proto, m.Truncated, len(m.Answer), tc.truncated)
		}
	}
}

func TestServerAddressInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := serve.NewServer(serve.Options{Addr: l.Addr().String(), Handler: answerA(1), UDPSockets: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		s.Shutdown(t.Context())
		t.Fatal("Start on a TCP port in use succeeded")
	}
	if _, err := serve.NewServer(serve.Options{Addr: "no-port", Handler: answerA(1)}); err == nil {
		t.Error("NewServer accepted an address without a port")
	}
	if _, err := serve.NewServer(serve.Options{Addr: "127.0.0.1:0"}); err == nil {
		t.Error("NewServer accepted no handler")
	}
}

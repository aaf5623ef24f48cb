package acl_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/acl"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

func TestAllowed(t *testing.T) {
	def, err := acl.New(acl.Defaults(), acl.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	custom, err := acl.New(acl.Config{ClientNetworks: []string{"100.64.0.0/10", "2001:db8::7"}}, acl.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		a    *acl.ACL
		ip   string
		want bool
	}{
		{def, "127.0.0.1", true}, {def, "::1", true}, {def, "10.244.1.7", true}, {def, "172.31.255.1", true},
		{def, "172.32.0.1", false}, {def, "192.168.1.1", true}, {def, "fd00:10:96::1", true},
		{def, "8.8.8.8", false}, {def, "2001:db8::1", false}, {def, "::ffff:10.0.0.1", true},
		{custom, "100.100.1.1", true}, {custom, "10.0.0.1", false}, {custom, "2001:db8::7", true}, {custom, "2001:db8::8", false},
	} {
		if got := tc.a.Allowed(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("Allowed(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
	if _, err := acl.New(acl.Config{ClientNetworks: []string{"10.0.0.0/33"}}, acl.Deps{}); err == nil {
		t.Error("bad prefix: no error")
	}
}

// TestServe: a loopback client is served; the test Recorder's client
// (10.240.0.1) is refused by an ACL that allows only loopback.
func TestServe(t *testing.T) {
	next := serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := new(dns.Msg)
		m.SetReply(r)
		return dns.RcodeSuccess, w.WriteMsg(m)
	})
	a, err := acl.New(acl.Config{ClientNetworks: []string{"127.0.0.0/8"}}, acl.Deps{Next: next})
	if err != nil {
		t.Fatal(err)
	}
	addr := dnstest.StartServer(t, a)
	if m := dnstest.Exchange(t, addr, "udp", dnstest.Query("example.com.", dns.TypeA, 0)); m.Rcode != dns.RcodeSuccess {
		t.Errorf("loopback client: %s, want NOERROR", dns.RcodeToString[m.Rcode])
	}
	if rc, _ := a.ServeDNS(context.Background(), &dnstest.Recorder{}, dnstest.Query("example.com.", dns.TypeA, 0)); rc != dns.RcodeRefused {
		t.Errorf("client 10.240.0.1: %s, want REFUSED", dns.RcodeToString[rc])
	}
}

// TestServfailHasRA: a SERVFAIL from behind the ACL (the forwarder failed,
// the cache holds a SERVFAIL) reaches the client with RA set, through the
// server's Handle as in dnsd; a reply the next handler writes is left as is.
func TestServfailHasRA(t *testing.T) {
	fail := serve.HandlerFunc(func(context.Context, dns.ResponseWriter, *dns.Msg) (int, error) {
		return dns.RcodeServerFailure, nil
	})
	a, err := acl.New(acl.Config{ClientNetworks: []string{"127.0.0.0/8"}}, acl.Deps{Next: fail})
	if err != nil {
		t.Fatal(err)
	}
	addr := dnstest.StartServer(t, a)
	for _, proto := range []string{"udp", "tcp"} {
		m := dnstest.Exchange(t, addr, proto, dnstest.Query("example.com.", dns.TypeA, 1232))
		if m.Rcode != dns.RcodeServerFailure || !m.RecursionAvailable || m.IsEdns0() == nil {
			t.Errorf("%s: rcode %s RA %v OPT %v, want SERVFAIL with RA and OPT", proto, dns.RcodeToString[m.Rcode], m.RecursionAvailable, m.IsEdns0() != nil)
		}
	}
	// Refused clients are not told recursion is available.
	w := &dnstest.Recorder{}
	serve.Handle(t.Context(), a, w, dnstest.Query("example.com.", dns.TypeA, 0))
	if w.Msg.Rcode != dns.RcodeRefused || w.Msg.RecursionAvailable {
		t.Errorf("refused client: rcode %s RA %v, want REFUSED without RA", dns.RcodeToString[w.Msg.Rcode], w.Msg.RecursionAvailable)
	}
}

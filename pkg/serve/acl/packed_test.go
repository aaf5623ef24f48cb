package acl_test

import (
	"context"
	"testing"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/acl"
	"github.com/poddns/poddns/pkg/serve/dnstest"
)

// TestPackedSERVFAILWritten: a packed SERVFAIL from behind the ACL (a
// cached one) counts as written: the ACL writes no second reply, and the
// packed one is passed on packed.
func TestPackedSERVFAILWritten(t *testing.T) {
	var pr *dnstest.PackedReply
	next := serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		pr = &dnstest.PackedReply{M: serve.NewRequest(w, r).Reply(dns.RcodeServerFailure)}
		return dns.RcodeServerFailure, serve.WritePacked(w, pr.Packed())
	})
	a, err := acl.New(acl.Config{ClientNetworks: []string{"10.0.0.0/8"}}, acl.Deps{Next: next})
	if err != nil {
		t.Fatal(err)
	}
	rec := &dnstest.Recorder{}
	if _, err := serve.Handle(context.Background(), a, rec, dnstest.Query("example.com.", dns.TypeA, 0)); err != nil {
		t.Fatal(err)
	}
	if rec.Writes != 1 || rec.Msg.Rcode != dns.RcodeServerFailure || pr.MsgCalls.Load() != 0 {
		t.Errorf("%d replies written (last %v), message made %d times; want the one packed SERVFAIL", rec.Writes, rec.Msg, pr.MsgCalls.Load())
	}
}

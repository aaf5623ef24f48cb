package querylog_test

import (
	"context"
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/querylog"
)

// TestPackedReplyLogged: packed replies (cache hits) are logged with their
// rcode and classed by their answer count (a NOERROR without answers is a
// denial), and passed on packed.
func TestPackedReplyLogged(t *testing.T) {
	var made int32
	next := serve.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := serve.NewRequest(w, r).Reply(dns.RcodeSuccess)
		if r.Question[0].Name == "ok.a." {
			m.Answer = dnstest.RRs("ok.a. 30 IN A 192.0.2.1")
		}
		pr := &dnstest.PackedReply{M: m}
		defer func() { made += pr.MsgCalls.Load() }()
		return dns.RcodeSuccess, serve.WritePacked(w, pr.Packed())
	})
	c := querylog.Defaults()
	c.Classes = []string{"denial"}
	l, out := newLog(t, c, querylog.Deps{Store: podStore(t), Next: next})
	serveN(t, l, "ok.a.", "nodata.a.")
	l.Close()
	got := lines(t, out.Bytes())
	if !slices.Equal(names(got), []string{"nodata.a."}) || got[0].Rcode != "NOERROR" {
		t.Errorf("logged %+v, want nodata.a. NOERROR only", got)
	}
	if made != 0 {
		t.Errorf("the message was made %d times: the packed reply was not passed on packed", made)
	}
}

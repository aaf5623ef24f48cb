package querylog_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poddns/poddns/pkg/serve"
	"github.com/poddns/poddns/pkg/serve/dnstest"
	"github.com/poddns/poddns/pkg/serve/querylog"
	"github.com/poddns/poddns/pkg/serve/store"
)

// BenchmarkQueryLog is the cost of the query log per query on the serving
// path: a cluster-style answer without the log, and with every query
// logged to a file on disk (pod looked up in a store). It reports the
// lines dropped, which must be 0.
func BenchmarkQueryLog(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "file"
		}
		b.Run(name, func(b *testing.B) {
			var h serve.Handler = answering
			var l *querylog.Log
			m, _ := querylog.NewMetrics(nil)
			if on {
				c := querylog.Defaults()
				c.Enabled, c.Output = true, filepath.Join(b.TempDir(), "queries.log")
				s := store.New()
				var err error
				l, err = querylog.New(c, querylog.Deps{Next: answering, Store: s, Metrics: m})
				if err != nil {
					b.Fatal(err)
				}
				h = l
			}
			q := dnstest.Query("ok.example.com.", dns.TypeA, 0)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &dnstest.Recorder{}
				for pb.Next() {
					serve.Handle(context.Background(), h, w, q)
				}
			})
			if l != nil {
				l.Close()
				b.ReportMetric(testutil.ToFloat64(m.Dropped()), "dropped")
			}
		})
	}
}

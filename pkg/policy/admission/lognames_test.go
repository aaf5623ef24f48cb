package admission_test

import (
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
)

// TestLogNamesPod: the log lines of a request name the pod — its name, or
// its generateName followed by "*" — as well when the name comes from the
// decoded pod (the handler does not decode the object twice for it) as when
// the pod cannot be decoded.
func TestLogNamesPod(t *testing.T) {
	for _, tt := range []struct {
		name, namespace, reqName, pod, want string
	}{
		{"generateName", "tuned", "", generatedPod, `"name"="web-*"`},
		{"name in the object", "tuned", "", `{"metadata":{"name":"solo"},"spec":{"containers":[{"name":"c","image":"nginx"}]}}`, `"name"="solo"`},
		{"name in the request", "tuned", "req-name", generatedPod, `"name"="req-name"`},
		{"undecodable pod", "tuned", "", `{"metadata":{"generateName":"bad-"},"spec":{"containers":"not a list"}}`, `"name"="bad-*"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "")
			var lines []string
			log := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{})
			f.h.Log = &log
			f.serve(t, review("CREATE", tt.namespace, tt.reqName, tt.pod))
			if len(lines) == 0 {
				t.Fatal("no log line")
			}
			for _, l := range lines {
				if !strings.Contains(l, tt.want) {
					t.Errorf("log line %s does not name the pod with %s", l, tt.want)
				}
			}
		})
	}
}

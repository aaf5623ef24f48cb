package integration

// Differential test of pkg/resolvconf's Default/Validate/ValidatePodSpec
// against a real kube-apiserver (internal/testenv): every pod (and a few
// workload templates) is created with server-side dry run, and the API
// server's DNS field errors (type, field, message, in order), its full
// "... is invalid: ..." text and its warnings must equal what resolvconf
// computes after applying the same defaulting.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// dnsvalNamespace is the namespace the dry-run objects are created in.
const dnsvalNamespace = "dns-validation"

// dnsvalCase is one pod of the table: the test sets name, namespace and a
// container; everything else (dnsPolicy, dnsConfig, hostNetwork) comes from spec.
type dnsvalCase struct {
	name string
	spec corev1.PodSpec
	// wantInvalid records what the reference (resolvconf.md §2) says: true if
	// the pod must be rejected. It guards against a case that silently stops
	// exercising what it was written for; the differential comparison is the
	// real check.
	wantInvalid bool
}

// dnsvalResult is what one create request produced, reduced to the DNS part.
type dnsvalResult struct {
	// Causes are "Type field: message" lines, in order.
	Causes []string
	// Message is the Status message ("Pod \"x\" is invalid: ..."), or "" if
	// the request succeeded.
	Message string
	// Warnings are the warnings about DNS fields, in order.
	Warnings []string
	// Other holds API causes and warnings about fields outside
	// dnsPolicy/dnsConfig; a well-formed case has none.
	Other []string
}

// --- warning collection ----------------------------------------------------

// dnsvalWarnKey is the context key of the *dnsvalWarnings a request records into.
type dnsvalWarnKey struct{}

type dnsvalWarnings struct {
	mu   sync.Mutex
	list []string
}

func (w *dnsvalWarnings) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.list...)
}

// dnsvalWarningHandler records each warning into the *dnsvalWarnings carried by
// the request's context, so warnings are attributed to the request that got them.
type dnsvalWarningHandler struct{}

func (dnsvalWarningHandler) HandleWarningHeaderWithContext(ctx context.Context, _ int, _ string, text string) {
	rec, ok := ctx.Value(dnsvalWarnKey{}).(*dnsvalWarnings)
	if !ok {
		return
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.list = append(rec.list, text)
}

// --- comparison --------------------------------------------------------------

// dnsvalDiff returns "" if want and got are equal (order included), else a
// line diff: "  " common, "- " only in want (resolvconf), "+ " only in got
// (API server).
func dnsvalDiff(want, got []string) string {
	if len(want) == len(got) {
		same := true
		for i := range want {
			if want[i] != got[i] {
				same = false
				break
			}
		}
		if same {
			return ""
		}
	}
	// Longest common subsequence, then walk it.
	n, m := len(want), len(got)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if want[i] == got[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var b strings.Builder
	b.WriteString("--- resolvconf (want)\n+++ API server (got)\n")
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && want[i] == got[j]:
			fmt.Fprintf(&b, "  %s\n", want[i])
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			fmt.Fprintf(&b, "- %s\n", want[i])
			i++
		default:
			fmt.Fprintf(&b, "+ %s\n", got[j])
			j++
		}
	}
	return b.String()
}

// dnsvalCompare compares a resolvconf expectation with an API server result
// and returns a readable report of every difference, "" if they agree.
func dnsvalCompare(want, got dnsvalResult) string {
	var b strings.Builder
	if d := dnsvalDiff(want.Causes, got.Causes); d != "" {
		fmt.Fprintf(&b, "field errors differ:\n%s", d)
	}
	if want.Message != got.Message {
		fmt.Fprintf(&b, "status message differs:\n  resolvconf: %s\n  API:        %s\n", dnsvalShort(want.Message), dnsvalShort(got.Message))
	}
	if d := dnsvalDiff(want.Warnings, got.Warnings); d != "" {
		fmt.Fprintf(&b, "warnings differ:\n%s", d)
	}
	return b.String()
}

// dnsvalShort keeps huge messages (2 KiB search lists) readable.
func dnsvalShort(s string) string {
	const limit = 600
	if len(s) <= limit {
		return s
	}
	return fmt.Sprintf("%s…(%d bytes)…%s", s[:limit/2], len(s)-limit, s[len(s)-limit/2:])
}

func dnsvalCause(typ, fieldPath, msg string) string {
	return fmt.Sprintf("%s %s: %s", typ, fieldPath, msg)
}

// dnsvalOwnField reports whether fieldPath is spec.dnsPolicy or
// spec.dnsConfig (or below) for the pod spec at prefix.
func dnsvalOwnField(prefix *field.Path, fieldPath string) bool {
	for _, p := range []string{prefix.Child("dnsPolicy").String(), prefix.Child("dnsConfig").String()} {
		if fieldPath == p || strings.HasPrefix(fieldPath, p+".") || strings.HasPrefix(fieldPath, p+"[") {
			return true
		}
	}
	return false
}

// dnsvalExpect is what resolvconf says the API server does with spec (found at
// prefix in an object of kind gk named name): default, then validate.
func dnsvalExpect(gk schema.GroupKind, name string, spec *corev1.PodSpec, prefix *field.Path) dnsvalResult {
	spec = spec.DeepCopy()
	resolvconf.DefaultPodSpec(spec)
	errs, warnings := resolvconf.ValidatePodSpec(spec, prefix)
	var r dnsvalResult
	for _, e := range errs {
		r.Causes = append(r.Causes, dnsvalCause(string(e.Type), e.Field, e.ErrorBody()))
	}
	if len(errs) > 0 {
		r.Message = apierrors.NewInvalid(gk, name, errs).ErrStatus.Message
	}
	r.Warnings = warnings
	return r
}

// dnsvalObserve turns a create's error and warnings into a result, keeping only
// what concerns the DNS fields at prefix. A non-Invalid error fails the test.
func dnsvalObserve(t *testing.T, err error, warnings []string, prefix *field.Path) dnsvalResult {
	t.Helper()
	var r dnsvalResult
	for _, w := range warnings {
		f, _, _ := strings.Cut(w, ": ")
		if dnsvalOwnField(prefix, f) {
			r.Warnings = append(r.Warnings, w)
		} else {
			r.Other = append(r.Other, "warning: "+w)
		}
	}
	if err == nil {
		return r
	}
	var se *apierrors.StatusError
	if !errors.As(err, &se) || !apierrors.IsInvalid(err) || se.Status().Details == nil {
		t.Fatalf("create: want success or an Invalid StatusError with details, got %T: %v", err, err)
	}
	st := se.Status()
	for _, c := range st.Details.Causes {
		line := dnsvalCause(string(c.Type), c.Field, c.Message)
		if dnsvalOwnField(prefix, c.Field) {
			r.Causes = append(r.Causes, line)
		} else {
			r.Other = append(r.Other, "error: "+line)
		}
	}
	r.Message = st.Message
	return r
}

// --- the table -----------------------------------------------------------------

func dnsvalRepeat(s string, n int) string { return strings.Repeat(s, n) }

// dnsvalSearches returns n distinct valid search domains s0.example ... .
func dnsvalSearches(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("s%d.example", i)
	}
	return out
}

// dnsvalLongSearches returns entries whose space-joined length is exactly
// total: as many 253-char entries as fit, then one shorter last entry.
func dnsvalLongSearches(total int) []string {
	var out []string
	left := total
	for i := 0; ; i++ {
		sep := 0
		if len(out) > 0 {
			sep = 1
		}
		if left-sep <= 253 {
			out = append(out, dnsvalRepeat(string(rune('a'+i%26)), left-sep))
			return out
		}
		out = append(out, dnsvalRepeat(string(rune('a'+i%26)), 253))
		left -= 253 + sep
	}
}

// dnsvalExactSearches returns count distinct valid entries whose
// space-joined length is exactly total (each entry at most 253 chars).
func dnsvalExactSearches(count, total int) []string {
	chars := total - (count - 1)
	out := make([]string, count)
	for i := range out {
		n := chars / count
		if i < chars%count {
			n++
		}
		prefix := fmt.Sprintf("e%02d", i)
		out[i] = prefix + dnsvalRepeat("k", n-len(prefix))
	}
	return out
}

func dnsvalJoinedLen(s []string) int { return len(strings.Join(s, " ")) }

func dnsvalPtr[T any](v T) *T { return &v }

func dnsvalCases() []dnsvalCase {
	none, cf, cfhn, def := corev1.DNSNone, corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet, corev1.DNSDefault
	dc := func(ns []string, search []string, opts ...corev1.PodDNSConfigOption) *corev1.PodDNSConfig {
		return &corev1.PodDNSConfig{Nameservers: ns, Searches: search, Options: opts}
	}
	opt := func(name string, value *string) corev1.PodDNSConfigOption {
		return corev1.PodDNSConfigOption{Name: name, Value: value}
	}
	ns1 := []string{"10.96.0.10"}
	label64 := dnsvalRepeat("x", 64)

	c := []dnsvalCase{
		// dnsPolicy values.
		{name: "policy-ClusterFirst", spec: corev1.PodSpec{DNSPolicy: cf}},
		{name: "policy-ClusterFirstWithHostNet-no-hostNetwork", spec: corev1.PodSpec{DNSPolicy: cfhn}},
		{name: "policy-ClusterFirstWithHostNet-hostNetwork", spec: corev1.PodSpec{DNSPolicy: cfhn, HostNetwork: true}},
		{name: "policy-ClusterFirst-hostNetwork", spec: corev1.PodSpec{DNSPolicy: cf, HostNetwork: true}},
		{name: "policy-Default", spec: corev1.PodSpec{DNSPolicy: def}},
		{name: "policy-None-valid", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc(ns1, nil)}},
		{name: "policy-empty-defaulted", spec: corev1.PodSpec{DNSPolicy: ""}},
		{name: "policy-empty-with-dnsConfig", spec: corev1.PodSpec{DNSConfig: dc(nil, []string{"a.example"})}},
		{name: "policy-empty-with-bad-dnsConfig", spec: corev1.PodSpec{DNSConfig: dc([]string{"bad"}, []string{"Bad"})}, wantInvalid: true},
		{name: "policy-bogus", spec: corev1.PodSpec{DNSPolicy: "bogus"}, wantInvalid: true},
		{name: "policy-lowercase-clusterfirst", spec: corev1.PodSpec{DNSPolicy: "clusterfirst"}, wantInvalid: true},
		{name: "policy-uppercase-CLUSTERFIRST", spec: corev1.PodSpec{DNSPolicy: "CLUSTERFIRST"}, wantInvalid: true},
		{name: "policy-lowercase-default", spec: corev1.PodSpec{DNSPolicy: "default"}, wantInvalid: true},
		{name: "policy-lowercase-none-without-dnsConfig", spec: corev1.PodSpec{DNSPolicy: "none"}, wantInvalid: true},
		{name: "policy-leading-space", spec: corev1.PodSpec{DNSPolicy: " ClusterFirst"}, wantInvalid: true},
		{name: "policy-quote-and-unicode", spec: corev1.PodSpec{DNSPolicy: "Clüster\"First"}, wantInvalid: true},
		{name: "policy-bogus-with-bad-dnsConfig", spec: corev1.PodSpec{DNSPolicy: "bogus", DNSConfig: dc([]string{"x"}, nil)}, wantInvalid: true},

		// dnsPolicy None.
		{name: "none-without-dnsConfig", spec: corev1.PodSpec{DNSPolicy: none}, wantInvalid: true},
		{name: "none-empty-dnsConfig", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: &corev1.PodDNSConfig{}}, wantInvalid: true},
		{name: "none-explicit-empty-nameservers", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{}, nil)}, wantInvalid: true},
		{name: "none-no-nameservers-bad-searches-and-options-not-reported", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc(nil,
			[]string{"Bad.", "", "a..b"}, opt("", nil), opt("", dnsvalPtr("1")))}, wantInvalid: true},
		{name: "none-no-nameservers-33-searches-not-reported", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc(nil, dnsvalSearches(33))}, wantInvalid: true},
		{name: "none-bad-nameserver-bad-search-bad-option", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"nope"},
			[]string{"Bad"}, opt("", nil))}, wantInvalid: true},
		{name: "none-three-nameservers-searches-options", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"10.0.0.1", "fd00::1", "192.168.1.1"},
			[]string{"ns.svc.cluster.local", "svc.cluster.local", "cluster.local"}, opt("ndots", dnsvalPtr("2")), opt("edns0", nil))}},

		// Nameservers.
		{name: "ns-3-valid-ClusterFirst", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc([]string{"1.1.1.1", "8.8.8.8", "9.9.9.9"}, nil)}},
		{name: "ns-4-too-many", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"1.1.1.1", "8.8.8.8", "9.9.9.9", "1.0.0.1"}, nil)}, wantInvalid: true},
		{name: "ns-4-too-many-Default-policy", spec: corev1.PodSpec{DNSPolicy: def, DNSConfig: dc([]string{"1.1.1.1", "8.8.8.8", "9.9.9.9", "1.0.0.1"}, nil)}, wantInvalid: true},
		{name: "ns-5-too-many-with-bad-entries", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"1.1.1.1", "x", "9.9.9.9", "010.0.0.1", "::ffff:1.2.3.4"}, nil)}, wantInvalid: true},
		{name: "ns-leading-zeros", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"010.1.1.1"}, nil)}, wantInvalid: true},
		{name: "ns-leading-zero-last-octet", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"10.96.0.010"}, nil)}, wantInvalid: true},
		{name: "ns-ipv4-mapped-ipv6", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"::ffff:1.2.3.4"}, nil)}, wantInvalid: true},
		{name: "ns-ipv4-mapped-ipv6-hex", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"::ffff:0102:0304"}, nil)}, wantInvalid: true},
		{name: "ns-ipv4-mapped-with-leading-zeros", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"::ffff:010.1.1.1"}, nil)}, wantInvalid: true},
		{name: "ns-ipv6-zone", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"fe80::1%eth0"}, nil)}, wantInvalid: true},
		{name: "ns-ipv4-zone", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"10.0.0.1%eth0"}, nil)}, wantInvalid: true},
		{name: "ns-garbage", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"not-an-ip"}, nil)}, wantInvalid: true},
		{name: "ns-empty-string", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{""}, nil)}, wantInvalid: true},
		{name: "ns-trailing-space", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"1.2.3.4 "}, nil)}, wantInvalid: true},
		{name: "ns-three-octets", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"1.2.3"}, nil)}, wantInvalid: true},
		{name: "ns-octet-256", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"256.1.1.1"}, nil)}, wantInvalid: true},
		{name: "ns-cidr", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"10.0.0.1/32"}, nil)}, wantInvalid: true},
		{name: "ns-ipv6-brackets", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"[fd00::1]"}, nil)}, wantInvalid: true},
		{name: "ns-ipv4-with-port", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"10.0.0.1:53"}, nil)}, wantInvalid: true},
		{name: "ns-noncanonical-ipv6-warning", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"2001:DB8:0:0:0:0:0:1"}, nil)}},
		{name: "ns-uppercase-ipv6-warning", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"2001:DB8::1"}, nil)}},
		{name: "ns-noncanonical-lowercase-ipv6-warning", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"fd00:0:0::a"}, nil)}},
		{name: "ns-two-noncanonical-warnings-in-order", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc([]string{"FD00::1", "10.0.0.1", "fd00:0000::2"}, nil)}},
		{name: "ns-noncanonical-with-error-no-warning", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"2001:DB8::1"}, []string{"Bad"})}, wantInvalid: true},
		{name: "ns-unspecified-ipv6", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"::"}, nil)}},
		{name: "ns-loopback-ipv6-and-ipv4-unspecified", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"::1", "0.0.0.0", "255.255.255.255"}, nil)}},
		{name: "ns-ipv4-embedded-ipv6-not-mapped", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"64:ff9b::1.2.3.4"}, nil)}},
		{name: "ns-duplicates-allowed", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc([]string{"10.0.0.1", "10.0.0.1"}, nil)}},

		// Searches: counts and lengths.
		{name: "search-32-entries", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, dnsvalSearches(32))}},
		{name: "search-33-entries", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, dnsvalSearches(33))}, wantInvalid: true},
		{name: "search-2048-chars-joined", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, dnsvalLongSearches(2048))}},
		{name: "search-2049-chars-joined", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, dnsvalLongSearches(2049))}, wantInvalid: true},
		{name: "search-33-entries-and-too-long", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, func() []string {
			s := make([]string, 33)
			for i := range s {
				s[i] = fmt.Sprintf("%02d%s", i, dnsvalRepeat("q", 61))
			}
			return s
		}())}, wantInvalid: true},
		{name: "search-33-entries-too-long-and-bad-entries", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, func() []string {
			s := dnsvalLongSearches(2100)
			s = append(s, dnsvalSearches(30)...)
			s[1] = "Bad"
			return s
		}())}, wantInvalid: true},
		{name: "search-253-char-entry", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{dnsvalRepeat("a", 253)})}},
		{name: "search-254-char-entry", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{dnsvalRepeat("a", 254)})}, wantInvalid: true},
		{name: "search-253-chars-plus-trailing-dot", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{dnsvalRepeat("a", 253) + "."})}},
		{name: "search-254-chars-plus-trailing-dot", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{dnsvalRepeat("a", 254) + "."})}, wantInvalid: true},
		{name: "search-254-char-uppercase-two-messages", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{dnsvalRepeat("A", 254)})}, wantInvalid: true},
		{name: "search-253-labels-of-63", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{strings.Join([]string{dnsvalRepeat("a", 63), dnsvalRepeat("b", 63), dnsvalRepeat("c", 63), dnsvalRepeat("d", 61)}, ".")})}},

		// Searches: per-entry syntax.
		{name: "search-dot", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{"."})}},
		{name: "search-dotdot", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{".."})}, wantInvalid: true},
		{name: "search-a-dot", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{"a."})}},
		{name: "search-Bad-dot-reported-stripped", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{"Bad."})}, wantInvalid: true},
		{name: "search-empty-string", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{""})}, wantInvalid: true},
		{name: "search-a..b", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{"a..b"})}, wantInvalid: true},
		{name: "search-x_", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{"x_"})}, wantInvalid: true},
		{name: "search-_srv.example.com", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{"_srv.example.com"})}},
		{name: "search-a_b.example", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{"a_b.example"})}},
		{name: "search-double-underscore-start", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{"__a.example"})}, wantInvalid: true},
		{name: "search-64-char-label", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{label64 + ".example.com"})}},
		{name: "search-trailing-dot-fqdn", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{"example.com."})}},
		{name: "search-two-trailing-dots", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{"example.com.."})}, wantInvalid: true},
		{name: "search-leading-dot", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{".example.com"})}, wantInvalid: true},
		{name: "search-leading-hyphen", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{"-a.example"})}, wantInvalid: true},
		{name: "search-label-trailing-hyphen", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{"a-.example"})}, wantInvalid: true},
		{name: "search-uppercase", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{"Example.com"})}, wantInvalid: true},
		{name: "search-space", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{"a b"})}, wantInvalid: true},
		{name: "search-wildcard", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{"*.example.com"})}, wantInvalid: true},
		{name: "search-digits-and-hyphens", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{"0-9.1a-b2.x--y"})}},
		{name: "search-bad-entries-at-1-and-3", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{"ok.example", "Bad.", "fine", "a..b", "."})}, wantInvalid: true},
		{name: "search-duplicates-allowed", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, []string{"a.example", "a.example", "a.example."})}},

		// Options.
		{name: "options-valid", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, nil, opt("ndots", dnsvalPtr("2")), opt("edns0", nil), opt("timeout", dnsvalPtr("")))}},
		{name: "options-empty-name-index-0", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, nil, opt("", dnsvalPtr("5")))}, wantInvalid: true},
		{name: "options-empty-names-at-1-and-3", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, nil,
			opt("ndots", dnsvalPtr("1")), opt("", nil), opt("rotate", nil), opt("", dnsvalPtr("x")), opt("edns0", nil))}, wantInvalid: true},
		{name: "options-spaces-and-colons", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, nil,
			opt("my opt", dnsvalPtr("a b c")), opt("ndots:5", dnsvalPtr(":")), opt(" ", dnsvalPtr(" ")), opt("UPPER", dnsvalPtr("\t")))}},
		{name: "options-duplicate-names", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(nil, nil, opt("ndots", dnsvalPtr("1")), opt("ndots", dnsvalPtr("2")))}},

		// Combinations: several errors, order checked.
		{name: "combo-bogus-policy-everything-wrong", spec: corev1.PodSpec{DNSPolicy: "Bogus", DNSConfig: dc(
			[]string{"1.1.1.1", "010.0.0.1", "::ffff:1.1.1.1", "fe80::1%lo"},
			append(dnsvalSearches(32), "Bad."),
			opt("", nil), opt("ok", nil), opt("", dnsvalPtr("v")))}, wantInvalid: true},
		{name: "combo-ClusterFirst-ns-search-option", spec: corev1.PodSpec{DNSPolicy: cf, DNSConfig: dc(
			[]string{"x", "1.1.1.1"}, []string{"", ".", "x_"}, opt("", nil))}, wantInvalid: true},
		{name: "combo-None-everything-wrong", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc(
			[]string{"1", "2", "3", "4"}, append(dnsvalLongSearches(2049), "..", "UP"), opt("", nil))}, wantInvalid: true},
		{name: "combo-valid-everything-at-limits", spec: corev1.PodSpec{DNSPolicy: none, DNSConfig: dc(
			[]string{"10.0.0.1", "fd00::10", "2001:DB8::53"},
			dnsvalExactSearches(32, 2048),
			opt("ndots", dnsvalPtr("5")), opt("single-request-reopen", nil))}},
		{name: "combo-32-entries-2049-chars", spec: corev1.PodSpec{DNSPolicy: cfhn, DNSConfig: dc(nil, dnsvalExactSearches(32, 2049))}, wantInvalid: true},
	}
	return c
}

// dnsvalPod is the pod a case creates: the case's spec plus one container.
func dnsvalPod(name string, spec corev1.PodSpec) *corev1.Pod {
	spec = *spec.DeepCopy()
	spec.Containers = []corev1.Container{{Name: "c", Image: "registry.example/app:1"}}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: dnsvalNamespace},
		Spec:       spec,
	}
}

// dnsvalWorkload is one workload object whose pod template carries a case's
// DNS settings.
type dnsvalWorkload struct {
	name        string
	obj         client.Object
	gk          schema.GroupKind
	spec        *corev1.PodSpec // the template's pod spec inside obj
	prefix      *field.Path
	wantInvalid bool
}

func dnsvalTemplate(restart corev1.RestartPolicy, dns corev1.PodSpec) corev1.PodTemplateSpec {
	spec := *dns.DeepCopy()
	spec.Containers = []corev1.Container{{Name: "c", Image: "registry.example/app:1"}}
	spec.RestartPolicy = restart
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "dnsval"}}, Spec: spec}
}

func dnsvalWorkloads() []dnsvalWorkload {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "dnsval"}}
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: dnsvalNamespace} }
	tmplPath := field.NewPath("spec", "template", "spec")
	var out []dnsvalWorkload
	deploy := func(name string, dns corev1.PodSpec, invalid bool) {
		d := &appsv1.Deployment{ObjectMeta: meta(name), Spec: appsv1.DeploymentSpec{Selector: sel, Template: dnsvalTemplate(corev1.RestartPolicyAlways, dns)}}
		out = append(out, dnsvalWorkload{name: "Deployment-" + name, obj: d, gk: schema.GroupKind{Group: "apps", Kind: "Deployment"}, spec: &d.Spec.Template.Spec, prefix: tmplPath, wantInvalid: invalid})
	}
	none := corev1.DNSNone
	deploy("none-without-dnsconfig", corev1.PodSpec{DNSPolicy: none}, true)
	deploy("none-empty-nameservers", corev1.PodSpec{DNSPolicy: none, DNSConfig: &corev1.PodDNSConfig{Searches: []string{"Bad"}}}, true)
	deploy("bogus-policy", corev1.PodSpec{DNSPolicy: "bogus"}, true)
	deploy("many-errors", corev1.PodSpec{DNSPolicy: "clusterFirst", DNSConfig: &corev1.PodDNSConfig{
		Nameservers: []string{"1.1.1.1", "010.1.1.1", "::ffff:1.1.1.1", "x"},
		Searches:    append(dnsvalSearches(33), "Bad.", ""),
		Options:     []corev1.PodDNSConfigOption{{Name: ""}, {Name: "ndots", Value: dnsvalPtr("1")}, {Name: ""}},
	}}, true)
	deploy("empty-policy-defaulted", corev1.PodSpec{DNSConfig: &corev1.PodDNSConfig{Searches: []string{"_srv.example.com", "."}}}, false)
	deploy("valid-noncanonical-warning", corev1.PodSpec{DNSPolicy: none, DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{"10.0.0.1", "FD00:0::53"}}}, false)

	ds := &appsv1.DaemonSet{ObjectMeta: meta("bad-search"), Spec: appsv1.DaemonSetSpec{Selector: sel,
		Template: dnsvalTemplate(corev1.RestartPolicyAlways, corev1.PodSpec{DNSPolicy: corev1.DNSDefault, DNSConfig: &corev1.PodDNSConfig{Searches: []string{"a..b", dnsvalRepeat("z", 254)}}})}}
	out = append(out, dnsvalWorkload{name: "DaemonSet-bad-search", obj: ds, gk: schema.GroupKind{Group: "apps", Kind: "DaemonSet"}, spec: &ds.Spec.Template.Spec, prefix: tmplPath, wantInvalid: true})

	sts := &appsv1.StatefulSet{ObjectMeta: meta("bad-option"), Spec: appsv1.StatefulSetSpec{Selector: sel,
		Template: dnsvalTemplate(corev1.RestartPolicyAlways, corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirstWithHostNet, DNSConfig: &corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{Name: "a"}, {Name: ""}}}})}}
	out = append(out, dnsvalWorkload{name: "StatefulSet-bad-option", obj: sts, gk: schema.GroupKind{Group: "apps", Kind: "StatefulSet"}, spec: &sts.Spec.Template.Spec, prefix: tmplPath, wantInvalid: true})

	job := &batchv1.Job{ObjectMeta: meta("bad-nameserver"), Spec: batchv1.JobSpec{
		Template: dnsvalTemplate(corev1.RestartPolicyNever, corev1.PodSpec{DNSPolicy: none, DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{"fe80::1%eth0"}}})}}
	out = append(out, dnsvalWorkload{name: "Job-bad-nameserver", obj: job, gk: schema.GroupKind{Group: "batch", Kind: "Job"}, spec: &job.Spec.Template.Spec, prefix: tmplPath, wantInvalid: true})

	cj := &batchv1.CronJob{ObjectMeta: meta("none-without-dnsconfig"), Spec: batchv1.CronJobSpec{Schedule: "*/5 * * * *",
		JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
			Template: dnsvalTemplate(corev1.RestartPolicyOnFailure, corev1.PodSpec{DNSPolicy: none})}}}}
	out = append(out, dnsvalWorkload{name: "CronJob-none-without-dnsconfig", obj: cj, gk: schema.GroupKind{Group: "batch", Kind: "CronJob"},
		spec: &cj.Spec.JobTemplate.Spec.Template.Spec, prefix: field.NewPath("spec", "jobTemplate", "spec", "template", "spec"), wantInvalid: true})

	pt := &corev1.PodTemplate{ObjectMeta: meta("bad-policy-and-search"),
		Template: dnsvalTemplate(corev1.RestartPolicyAlways, corev1.PodSpec{DNSPolicy: "NONE", DNSConfig: &corev1.PodDNSConfig{Searches: []string{"Bad."}}})}
	out = append(out, dnsvalWorkload{name: "PodTemplate-bad-policy-and-search", obj: pt, gk: schema.GroupKind{Kind: "PodTemplate"},
		spec: &pt.Template.Spec, prefix: field.NewPath("template", "spec"), wantInvalid: true})
	return out
}

// --- tests ----------------------------------------------------------------------

// dnsvalEnv is the started control plane plus a client whose requests record
// their warnings into the context's *dnsvalWarnings.
type dnsvalEnv struct {
	c client.Client
}

// create dry-runs obj and returns the error and the warnings of that request.
func (e *dnsvalEnv) create(t *testing.T, obj client.Object) (error, []string) {
	t.Helper()
	rec := &dnsvalWarnings{}
	ctx := context.WithValue(t.Context(), dnsvalWarnKey{}, rec)
	err := e.c.Create(ctx, obj, client.DryRunAll)
	return err, rec.get()
}

func dnsvalStart(t *testing.T) *dnsvalEnv {
	t.Helper()
	env := testenv.Start(t)
	cfg := rest.CopyConfig(env.Config)
	// Replace whatever handler the config had: warnings go to the recorder of
	// the request's context (and are not logged).
	cfg.WarningHandler = nil
	cfg.WarningHandlerWithContext = dnsvalWarningHandler{}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: dnsvalNamespace}}
	if err := c.Create(t.Context(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", dnsvalNamespace, err)
	}
	return &dnsvalEnv{c: c}
}

// dnsvalCheck runs the differential comparison for one object and reports.
func dnsvalCheck(t *testing.T, e *dnsvalEnv, obj client.Object, gk schema.GroupKind, spec *corev1.PodSpec, prefix *field.Path, wantInvalid bool) {
	t.Helper()
	want := dnsvalExpect(gk, obj.GetName(), spec, prefix)
	err, warnings := e.create(t, obj)
	got := dnsvalObserve(t, err, warnings, prefix)
	if len(got.Other) > 0 {
		t.Errorf("API server reported something outside %s.dnsPolicy/dnsConfig (the case is malformed):\n  %s", prefix, strings.Join(got.Other, "\n  "))
		// The full message then includes the other errors; compare only the DNS causes.
		got.Message, want.Message = "", ""
	}
	if d := dnsvalCompare(want, got); d != "" {
		t.Errorf("resolvconf disagrees with the API server for %s %q:\n%s", gk.Kind, obj.GetName(), d)
	}
	if isInvalid := len(got.Causes) > 0; isInvalid != wantInvalid {
		t.Errorf("reference says invalid=%v, API server says invalid=%v (causes: %q)", wantInvalid, isInvalid, got.Causes)
	}
	t.Logf("API: causes=%d warnings=%q message=%s", len(got.Causes), got.Warnings, dnsvalShort(got.Message))
}

func TestValidationAgainstAPIServer(t *testing.T) {
	e := dnsvalStart(t)

	t.Run("pods", func(t *testing.T) {
		cases := dnsvalCases()
		if len(cases) < 60 {
			t.Fatalf("table has %d cases, want at least 60", len(cases))
		}
		seen := map[string]bool{}
		for i, tc := range cases {
			if seen[tc.name] {
				t.Fatalf("duplicate case name %q", tc.name)
			}
			seen[tc.name] = true
			t.Run(tc.name, func(t *testing.T) {
				pod := dnsvalPod(fmt.Sprintf("dnsval-%03d", i), tc.spec)
				dnsvalCheck(t, e, pod, schema.GroupKind{Kind: "Pod"}, &pod.Spec, field.NewPath("spec"), tc.wantInvalid)
			})
		}
	})

	t.Run("workloads", func(t *testing.T) {
		for _, w := range dnsvalWorkloads() {
			t.Run(w.name, func(t *testing.T) {
				dnsvalCheck(t, e, w.obj, w.gk, w.spec, w.prefix, w.wantInvalid)
			})
		}
	})

	// Negative control against live data: a wrong expectation (one error
	// missing, or the errors reordered, or a warning dropped) must be reported.
	t.Run("negative-control", func(t *testing.T) {
		pod := dnsvalPod("dnsval-negative", corev1.PodSpec{DNSPolicy: "bogus", DNSConfig: &corev1.PodDNSConfig{
			Nameservers: []string{"x"}, Searches: []string{"Bad"}}})
		err, warnings := e.create(t, pod)
		got := dnsvalObserve(t, err, warnings, field.NewPath("spec"))
		if len(got.Causes) < 2 {
			t.Fatalf("want at least 2 causes from the API server, got %q", got.Causes)
		}
		wrong := got
		wrong.Causes = got.Causes[1:]
		if dnsvalCompare(wrong, got) == "" {
			t.Errorf("a missing error was not detected")
		}
		wrong = got
		wrong.Causes = append([]string{got.Causes[1], got.Causes[0]}, got.Causes[2:]...)
		if dnsvalCompare(wrong, got) == "" {
			t.Errorf("reordered errors were not detected")
		}
		wrong = got
		wrong.Message = strings.Replace(got.Message, "bogus", "Bogus", 1)
		if dnsvalCompare(wrong, got) == "" {
			t.Errorf("a different status message was not detected")
		}

		valid := dnsvalPod("dnsval-negative-warn", corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{"FD00::1"}}})
		err, warnings = e.create(t, valid)
		got = dnsvalObserve(t, err, warnings, field.NewPath("spec"))
		if len(got.Warnings) != 1 {
			t.Fatalf("want 1 warning from the API server for a non-canonical IPv6 nameserver, got %q", got.Warnings)
		}
		wrong = got
		wrong.Warnings = nil
		if dnsvalCompare(wrong, got) == "" {
			t.Errorf("a missing warning was not detected")
		}
	})
}

// TestValidationCompareDetectsDifferences shows the comparison can fail: it
// runs without an API server.
func TestValidationCompareDetectsDifferences(t *testing.T) {
	a := []string{"x: 1", "y: 2", "z: 3"}
	for _, tc := range []struct {
		name string
		want []string
		got  []string
		same bool
	}{
		{"equal", a, append([]string(nil), a...), true},
		{"both-empty", nil, []string{}, true},
		{"reordered", a, []string{"y: 2", "x: 1", "z: 3"}, false},
		{"missing", a, a[:2], false},
		{"extra", a[:2], a, false},
		{"changed-text", a, []string{"x: 1", "y: 2!", "z: 3"}, false},
		{"want-empty", nil, a[:1], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := dnsvalDiff(tc.want, tc.got)
			if (d == "") != tc.same {
				t.Fatalf("dnsvalDiff(%q, %q) = %q, want same=%v", tc.want, tc.got, d, tc.same)
			}
			if !tc.same {
				t.Logf("diff:\n%s", d)
			}
		})
	}
	base := dnsvalResult{Causes: a, Message: `Pod "p" is invalid: x`, Warnings: []string{"w"}}
	for name, mut := range map[string]func(r *dnsvalResult){
		"message":  func(r *dnsvalResult) { r.Message = `Pod "q" is invalid: x` },
		"warnings": func(r *dnsvalResult) { r.Warnings = nil },
		"causes":   func(r *dnsvalResult) { r.Causes = nil },
	} {
		other := base
		mut(&other)
		if dnsvalCompare(base, other) == "" {
			t.Errorf("dnsvalCompare does not detect a different %s", name)
		}
	}
	if d := dnsvalCompare(base, base); d != "" {
		t.Errorf("dnsvalCompare reports a difference for equal results:\n%s", d)
	}

	// The builders produce what the boundary cases claim.
	for _, tc := range []struct {
		name         string
		s            []string
		count, chars int
	}{
		{"long-2048", dnsvalLongSearches(2048), -1, 2048},
		{"long-2049", dnsvalLongSearches(2049), -1, 2049},
		{"exact-32-2048", dnsvalExactSearches(32, 2048), 32, 2048},
		{"exact-32-2049", dnsvalExactSearches(32, 2049), 32, 2049},
	} {
		if got := dnsvalJoinedLen(tc.s); got != tc.chars {
			t.Errorf("%s: joined length %d, want %d", tc.name, got, tc.chars)
		}
		if tc.count >= 0 && len(tc.s) != tc.count {
			t.Errorf("%s: %d entries, want %d", tc.name, len(tc.s), tc.count)
		}
		for i, s := range tc.s {
			if len(s) > 253 || len(s) == 0 {
				t.Errorf("%s: entry %d has length %d", tc.name, i, len(s))
			}
		}
	}
}

package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// ReportFormat is a policy report API the cluster serves.
type ReportFormat struct {
	// Group, Version and Resource name the API (for a dynamic client).
	Group, Version, Resource string
	// Kind is the namespaced report's kind.
	Kind string
	// TopSource sets the report's own source field (openreports.io has one,
	// wgpolicyk8s.io only the results').
	TopSource bool
}

// APIVersion is group/version.
func (f ReportFormat) APIVersion() string { return f.Group + "/" + f.Version }

// The report APIs poddns writes, in order of preference: the openreports.io
// API Kyverno is moving to, then the wgpolicyk8s.io PolicyReport of the
// Policy Working Group that Kyverno and Policy Reporter read.
var (
	OpenReports = ReportFormat{Group: "openreports.io", Version: "v1alpha1", Resource: "reports", Kind: "Report", TopSource: true}
	WGPolicy    = ReportFormat{Group: "wgpolicyk8s.io", Version: "v1alpha2", Resource: "policyreports", Kind: "PolicyReport"}
)

// Labels and annotations of the reports poddns writes.
const (
	// Source is the source of every result, and of openreports.io reports.
	Source = "poddns"
	// LabelManagedBy marks the reports poddns owns: only those are updated
	// or deleted.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// AnnotationHash is a digest of a report's results and summary; a scan
	// that would write the same one leaves the report alone.
	AnnotationHash = "poddns.io/report-hash"
	// ReportNamePrefix starts the names of poddns's reports in a namespace:
	// poddns-0, poddns-1, ...
	ReportNamePrefix = "poddns-"
	// Rule is the rule name of every result: a DNSPolicy has one rule.
	Rule = "dns"
)

// Limits that keep every report far below etcd's 1.5 MiB object limit.
const (
	DefaultMaxResults = 1000
	DefaultMaxBytes   = 512 << 10
)

// PolicyReportOptions shape the reports of a namespace.
type PolicyReportOptions struct {
	Format ReportFormat
	// MaxResults and MaxBytes bound one report: its number of results and
	// the size of their JSON (0: DefaultMaxResults, DefaultMaxBytes).
	MaxResults, MaxBytes int
	// Timestamp is the results' time, in seconds since the epoch.
	Timestamp int64
}

// Result is one result of a policy report: one policy and one pod (its
// timestamp is added when the report is written, see EachReport).
type Result struct {
	Source     string            `json:"source"`
	Policy     string            `json:"policy"`
	Rule       string            `json:"rule"`
	Category   string            `json:"category"`
	Result     string            `json:"result"`
	Scored     bool              `json:"scored"`
	Message    string            `json:"message"`
	Resources  []ResourceRef     `json:"resources"`
	Properties map[string]string `json:"properties,omitempty"`
}

// ResourceRef is the object reference of a result.
type ResourceRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	UID        string `json:"uid,omitempty"`
}

// Summary counts results by kind.
type Summary struct {
	Pass  int `json:"pass"`
	Fail  int `json:"fail"`
	Warn  int `json:"warn"`
	Error int `json:"error"`
	Skip  int `json:"skip"`
}

// Encoded is a report result ready to be written: the pod and policy it is
// about (its sort key) and its JSON, without a timestamp.
type Encoded struct {
	Pod, Policy, Result string
	JSON                []byte
}

// Encode turns a pod's result into report results, one per policy.
func Encode(r *PodResult) ([]Encoded, error) {
	out := make([]Encoded, 0, len(r.Policies))
	for _, p := range r.Policies {
		res := Result{
			Source: Source, Policy: p.Policy, Rule: Rule, Category: "DNS",
			Result: p.Result, Scored: true, Message: p.Message,
			Resources: []ResourceRef{{APIVersion: "v1", Kind: "Pod", Namespace: r.Pod.Namespace, Name: r.Pod.Name, UID: string(r.Pod.UID)}},
		}
		if p.Result == ResultFail {
			res.Properties = map[string]string{"workload": r.Workload.Kind + "/" + r.Workload.Name, "fix": r.Action}
		}
		b, err := json.Marshal(&res)
		if err != nil {
			return nil, fmt.Errorf("encode report result: %w", err)
		}
		out = append(out, Encoded{Pod: r.Pod.Name, Policy: p.Policy, Result: p.Result, JSON: b})
	}
	return out, nil
}

// Doc is one report to write: its name, the hash of its results and its
// JSON.
type Doc struct {
	Name, Hash string
	JSON       []byte
}

// EachReport calls fn with the reports of namespace holding results, one at
// a time (only one report's JSON is in memory): named ReportNamePrefix+"0",
// "1", ..., each with at most MaxResults results and MaxBytes of them,
// sorted by pod, then policy, so that the same results give the same
// reports. No results give no reports. It returns the number of reports.
func EachReport(namespace string, results []Encoded, o PolicyReportOptions, fn func(Doc) error) (int, error) {
	maxN, maxB := o.MaxResults, o.MaxBytes
	if maxN <= 0 {
		maxN = DefaultMaxResults
	}
	if maxB <= 0 {
		maxB = DefaultMaxBytes
	}
	sort.SliceStable(results, func(i, j int) bool {
		a, b := results[i], results[j]
		if a.Pod != b.Pod {
			return a.Pod < b.Pod
		}
		return a.Policy < b.Policy
	})
	n := 0
	for len(results) > 0 {
		size, k := 0, 0
		for k < len(results) && k < maxN && (k == 0 || size+len(results[k].JSON) <= maxB) {
			size += len(results[k].JSON) + 1
			k++
		}
		doc, err := reportDoc(namespace, n, results[:k], o)
		if err != nil {
			return n, err
		}
		if err := fn(doc); err != nil {
			return n, err
		}
		n++
		results = results[k:]
	}
	return n, nil
}

// reportDoc is the JSON of one report. The hash covers what a scan decides,
// not when: the timestamps are spliced into the results after it.
func reportDoc(namespace string, i int, chunk []Encoded, o PolicyReportOptions) (Doc, error) {
	h := sha256.New()
	var sum Summary
	for _, c := range chunk {
		h.Write(c.JSON)
		h.Write([]byte{'\n'})
		switch c.Result {
		case ResultPass:
			sum.Pass++
		case ResultFail:
			sum.Fail++
		case ResultSkip:
			sum.Skip++
		}
	}
	name := ReportNamePrefix + strconv.Itoa(i)
	hash := hex.EncodeToString(h.Sum(nil))[:32]
	head := struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name        string            `json:"name"`
			Namespace   string            `json:"namespace"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
		Source  string  `json:"source,omitempty"`
		Summary Summary `json:"summary"`
	}{APIVersion: o.Format.APIVersion(), Kind: o.Format.Kind, Summary: sum}
	head.Metadata.Name, head.Metadata.Namespace = name, namespace
	head.Metadata.Labels = map[string]string{LabelManagedBy: Source}
	head.Metadata.Annotations = map[string]string{AnnotationHash: hash}
	if o.Format.TopSource {
		head.Source = Source
	}
	b, err := json.Marshal(&head)
	if err != nil {
		return Doc{}, fmt.Errorf("encode report: %w", err)
	}
	var ts []byte
	if o.Timestamp > 0 {
		ts = fmt.Appendf(nil, `,"timestamp":{"seconds":%d,"nanos":0}}`, o.Timestamp)
	}
	buf := bytes.NewBuffer(make([]byte, 0, len(b)+len(chunk)*(len(ts)+len(chunk[0].JSON)+1)+16))
	buf.Write(b[:len(b)-1])
	buf.WriteString(`,"results":[`)
	for j, c := range chunk {
		if j > 0 {
			buf.WriteByte(',')
		}
		if ts == nil {
			buf.Write(c.JSON)
			continue
		}
		buf.Write(c.JSON[:len(c.JSON)-1]) // without the closing brace
		buf.Write(ts)
	}
	buf.WriteString("]}")
	return Doc{Name: name, Hash: hash, JSON: buf.Bytes()}, nil
}

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The result files' schemas. Every number is a pointer: any field may be
// missing, and a missing one renders as "—" (never as 0).

// DNSRun is a bench/results/dns-*.json file (make bench).
type DNSRun struct {
	Kind     string            `json:"kind"`
	Started  string            `json:"started"`
	Machine  map[string]any    `json:"machine"`
	Versions map[string]string `json:"versions"`
	Scales   []Scale           `json:"scales"`
}

// Scale is one fill of the control plane and the runs against it.
type Scale struct {
	Name        string             `json:"name"`
	Services    *float64           `json:"services"`
	Headless    *float64           `json:"headless"`
	Pods        *float64           `json:"pods"`
	FillSeconds *float64           `json:"fill_seconds"`
	Results     []DNSResult        `json:"results"`
	Ratios      map[string]float64 `json:"ratios"`
	// Profiles name dnsd's pprof profiles of the scale ("heap",
	// "cpu-<scenario>"), files beside the results file.
	Profiles map[string]string `json:"profiles"`
}

// DNSResult is one server in one scenario at one scale.
type DNSResult struct {
	Server            string    `json:"server"`
	Scenario          string    `json:"scenario"`
	QPS               *float64  `json:"qps"`
	QPSRounds         []float64 `json:"qps_rounds"`
	P50               *float64  `json:"p50_ms"`
	P99               *float64  `json:"p99_ms"`
	P999              *float64  `json:"p999_ms"`
	FixedRateQPS      *float64  `json:"fixed_rate_qps"`
	RSSAfterFill      *float64  `json:"rss_after_fill_mb"`
	RSSAfterLoad      *float64  `json:"rss_after_load_mb"`
	PeakRSSRestart    *float64  `json:"peak_rss_restart_mb"`
	APIToAnswerSecond *float64  `json:"api_to_answer_seconds"`
}

// Objects is the scale's pods + services (headless included), the x of
// CoreDNS's memory formula; nil when a count is missing.
func (s *Scale) Objects() *float64 {
	if s.Services == nil || s.Pods == nil {
		return nil
	}
	n := *s.Services + *s.Pods
	if s.Headless != nil {
		n += *s.Headless
	}
	return &n
}

// Result returns the result of server in scenario, or nil.
func (s *Scale) Result(server, scenario string) *DNSResult {
	for i := range s.Results {
		if s.Results[i].Server == server && s.Results[i].Scenario == scenario {
			return &s.Results[i]
		}
	}
	return nil
}

// RSS is a server's memory at a scale: the largest RSS after load over its
// scenarios (after fill when no run measured after load); nil when none.
func (s *Scale) RSS(server string) *float64 {
	var best *float64
	for _, pick := range []func(*DNSResult) *float64{
		func(r *DNSResult) *float64 { return r.RSSAfterLoad },
		func(r *DNSResult) *float64 { return r.RSSAfterFill },
	} {
		for i := range s.Results {
			r := &s.Results[i]
			if v := pick(r); r.Server == server && v != nil && (best == nil || *v > *best) {
				best = v
			}
		}
		if best != nil {
			return best
		}
	}
	return nil
}

// WebhookRun is a bench/results/webhook-*.json file (make bench-webhook).
type WebhookRun struct {
	Kind     string            `json:"kind"`
	Started  string            `json:"started"`
	Machine  map[string]any    `json:"machine"`
	Versions map[string]string `json:"versions"`
	Setup    string            `json:"setup"`
	Seconds  *float64          `json:"seconds_per_cell"`
	Rounds   *float64          `json:"rounds"`
	Results  []WebhookResult   `json:"results"`
}

// WebhookResult is one policy count at one rate.
type WebhookResult struct {
	Policies     *float64  `json:"policies"`
	Matching     *float64  `json:"matching"`
	Rate         *float64  `json:"rate"`
	Requests     *float64  `json:"requests"`
	Errors       *float64  `json:"errors"`
	AchievedRate *float64  `json:"achieved_rate"`
	P50          *float64  `json:"p50_ms"`
	P99          *float64  `json:"p99_ms"`
	P999         *float64  `json:"p999_ms"`
	Max          *float64  `json:"max_ms"`
	CPUPercent   *float64  `json:"cpu_percent"`
	CPUPerReq    *float64  `json:"cpu_ms_per_request"`
	RSSMB        *float64  `json:"rss_mb"`
	P99Rounds    []float64 `json:"p99_rounds_ms"`
}

// Inputs are the result files a report is made from; a nil run is absent.
type Inputs struct {
	DNS     *DNSRun
	DNSFile string // base name, for the report's header
	// Profiles are the summaries of the DNS run's profiles, by scale and
	// kind.
	Profiles    map[string]map[string]ProfileSummary
	Webhook     *WebhookRun
	WebhookFile string
}

// parseDNS decodes a DNS result file; ok is false for a file in another
// schema (an older one without "kind": "dns" and "scales").
func parseDNS(data []byte) (run *DNSRun, ok bool, err error) {
	var r DNSRun
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, false, err
	}
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(data, &raw)
	if r.Kind != "dns" || raw["scales"] == nil {
		return nil, false, nil
	}
	return &r, true, nil
}

func parseWebhook(data []byte) (run *WebhookRun, ok bool, err error) {
	var r WebhookRun
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, false, err
	}
	if r.Kind != "webhook" {
		return nil, false, nil
	}
	return &r, true, nil
}

// findInputs reads the newest usable dns-*.json and webhook-*.json in dir.
// Newest is by file name (the names carry the UTC start time), so the choice
// does not depend on file times; files in another schema are skipped.
func findInputs(dir string) (Inputs, error) {
	var in Inputs
	for _, kind := range []string{"dns", "webhook"} {
		names, err := filepath.Glob(filepath.Join(dir, kind+"-*.json"))
		if err != nil {
			return in, err
		}
		sort.Sort(sort.Reverse(sort.StringSlice(names)))
		for _, name := range names {
			data, err := os.ReadFile(name)
			if err != nil {
				return in, err
			}
			var ok bool
			if kind == "dns" {
				in.DNS, ok, err = parseDNS(data)
			} else {
				in.Webhook, ok, err = parseWebhook(data)
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "report: skipping %s: %v\n", name, err)
				continue
			}
			if ok {
				if kind == "dns" {
					in.DNSFile = filepath.Base(name)
					in.Profiles = readProfiles(dir, in.DNS)
				} else {
					in.WebhookFile = filepath.Base(name)
				}
				break
			}
			if !strings.HasSuffix(name, ".json") {
				continue
			}
			fmt.Fprintf(os.Stderr, "report: skipping %s: not the %s schema\n", name, kind)
		}
	}
	return in, nil
}

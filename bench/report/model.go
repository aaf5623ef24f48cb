package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/poddns/poddns/internal/benchresults"
)

// The result files' schemas (the DNS run's rows and the whole webhook run
// are benchresults', which the benchmarks write). Every number is a pointer: any field may be
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
	Name        string   `json:"name"`
	Services    *float64 `json:"services"`
	Headless    *float64 `json:"headless"`
	Pods        *float64 `json:"pods"`
	FillSeconds *float64 `json:"fill_seconds"`
	// The machine's load average ("1m 5m 15m") at the fill's end and at
	// the end of the runs.
	FillLoadAvg string                   `json:"fill_loadavg"`
	LoadAvg     string                   `json:"loadavg"`
	Results     []benchresults.DNSResult `json:"results"`
	Ratios      map[string]float64       `json:"ratios"`
	// Profiles name dnsd's pprof profiles of the scale ("heap",
	// "cpu-<scenario>"), files beside the results file.
	Profiles map[string]string `json:"profiles"`
	// QueryLogFileLines and QueryLogFileMB describe dnsd-querylog's log
	// file after the saturation runs.
	QueryLogFileLines *float64 `json:"querylog_file_lines"`
	QueryLogFileMB    *float64 `json:"querylog_file_mb"`
	// NodeLocalPods are the Pods of the node-local dnsd's node.
	NodeLocalPods *float64 `json:"nodelocal_pods"`
	// APIWatchers is the API server's cost with node-local instances
	// watching it, and APIWatcherSlope the CPU per instance.
	APIWatchers     []benchresults.WatcherLevel `json:"api_watchers"`
	APIWatcherSlope *float64                    `json:"apiserver_cpu_ms_per_s_per_watcher"`
	// The fill's rate: API objects, and writes (each Pod twice), per
	// second.
	FillObjectsPerSecond *float64 `json:"fill_objects_per_second"`
	FillWritesPerSecond  *float64 `json:"fill_writes_per_second"`
	// FillCPUSeconds is the CPU time of the fill by process
	// (kube-apiserver, etcd, writers).
	FillCPUSeconds map[string]float64 `json:"fill_cpu_seconds"`
	// APIWatcherSlopeRounds are the rounds' slopes (their median is
	// APIWatcherSlope), APIWatchEventMicros the CPU per watch event sent.
	APIWatcherSlopeRounds []float64 `json:"apiserver_cpu_ms_per_s_per_watcher_rounds"`
	APIWatchEventMicros   *float64  `json:"apiserver_cpu_us_per_watch_event"`
	// APIWatcherCPURounds are, per level of APIWatchers, the CPU of each
	// round.
	APIWatcherCPURounds [][]float64 `json:"apiserver_cpu_ms_per_s_rounds"`

	// From is the results file the scale was read from (set by
	// findInputs; several files when the newest lacks a scale).
	From *RunInfo `json:"-"`
}

// RunInfo names a DNS results file and what it says about its run.
type RunInfo struct {
	File     string
	Started  string
	Machine  map[string]any
	Versions map[string]string
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
func (s *Scale) Result(server, scenario string) *benchresults.DNSResult {
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
	for _, pick := range []func(*benchresults.DNSResult) *float64{
		func(r *benchresults.DNSResult) *float64 { return r.RSSAfterLoad },
		func(r *benchresults.DNSResult) *float64 { return r.RSSAfterFill },
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

// Inputs are the result files a report is made from; a nil run is absent.
type Inputs struct {
	DNS     *DNSRun
	DNSFile string // base name, for the report's header
	// Profiles are the summaries of the DNS run's profiles, by scale and
	// kind.
	Profiles    map[string]map[string]ProfileSummary
	Webhook     *benchresults.WebhookRun
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

func parseWebhook(data []byte) (run *benchresults.WebhookRun, ok bool, err error) {
	var r benchresults.WebhookRun
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
// does not depend on file times; files in another schema are skipped. A
// scale the newest DNS file lacks is taken from the newest older file that
// has it (a run at one scale does not hide another scale's figures); each
// scale says which file it is from.
func findInputs(dir string) (Inputs, error) {
	var in Inputs
	var merged *DNSRun
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
				var run *DNSRun
				run, ok, err = parseDNS(data)
				if err == nil && ok {
					if merged == nil {
						merged, in.DNS, in.DNSFile = run, run, filepath.Base(name)
					}
					addScales(merged, run, filepath.Base(name), dir, &in)
					continue
				}
			} else {
				in.Webhook, ok, err = parseWebhook(data)
				if err == nil && ok {
					in.WebhookFile = filepath.Base(name)
					break
				}
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "report: skipping %s: %v\n", name, err)
				continue
			}
			if !strings.HasSuffix(name, ".json") {
				continue
			}
			fmt.Fprintf(os.Stderr, "report: skipping %s: not the %s schema\n", name, kind)
		}
	}
	return in, nil
}

// addScales adds to merged the scales of run (the file name, newer files
// first) that merged does not have yet, each marked with its file, and
// reads their profiles.
func addScales(merged, run *DNSRun, name, dir string, in *Inputs) {
	info := &RunInfo{File: name, Started: run.Started, Machine: run.Machine, Versions: run.Versions}
	profiles := readProfiles(dir, run)
	var add []Scale
	for _, sc := range run.Scales {
		if merged != run && slices.ContainsFunc(merged.Scales, func(m Scale) bool { return m.Name == sc.Name }) {
			continue
		}
		sc.From = info
		add = append(add, sc)
		if p, ok := profiles[sc.Name]; ok {
			if in.Profiles == nil {
				in.Profiles = map[string]map[string]ProfileSummary{}
			}
			in.Profiles[sc.Name] = p
		}
	}
	if merged == run {
		merged.Scales = add
		return
	}
	merged.Scales = append(merged.Scales, add...)
	// Smallest first, as one run lists them.
	sort.SliceStable(merged.Scales, func(i, j int) bool {
		a, b := merged.Scales[i].Objects(), merged.Scales[j].Objects()
		return a != nil && b != nil && *a < *b
	})
}

// Files are the results files the scales were read from, newest first.
func (r *DNSRun) Files() []*RunInfo {
	var out []*RunInfo
	for _, sc := range r.Scales {
		if sc.From != nil && !slices.Contains(out, sc.From) {
			out = append(out, sc.From)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].File > out[j].File })
	return out
}

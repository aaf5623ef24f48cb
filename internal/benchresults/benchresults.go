// Package benchresults holds the schemas of the benchmarks' results files
// that the benchmarks write and the report (bench/report) reads, so that
// both use one type with one set of field names: the rows of the DNS
// benchmark's file (bench/results/dns-*.json, described in
// bench/README.md), which test/bench writes, and the webhook's whole file
// (bench/results/webhook-*.json), which pkg/policy/admission's load run
// writes. Every figure is a
// pointer: a figure not measured is absent from the file (never 0), and a
// reader sees nil.
package benchresults

// DNSResult is one server in one scenario at one scale.
type DNSResult struct {
	Server         string    `json:"server"`
	Scenario       string    `json:"scenario"`
	QPS            *float64  `json:"qps,omitempty"`
	QPSRounds      []float64 `json:"qps_rounds,omitempty"`
	P50            *float64  `json:"p50_ms,omitempty"`
	P99            *float64  `json:"p99_ms,omitempty"`
	P999           *float64  `json:"p999_ms,omitempty"`
	FixedRateQPS   *float64  `json:"fixed_rate_qps,omitempty"`
	RSSAfterFill   *float64  `json:"rss_after_fill_mb,omitempty"`
	RSSAfterLoad   *float64  `json:"rss_after_load_mb,omitempty"`
	PeakRSSRestart *float64  `json:"peak_rss_restart_mb,omitempty"`
	// APIToAnswerSeconds is the time from a Service's creation in the
	// API server to its first answer.
	APIToAnswerSeconds *float64 `json:"api_to_answer_seconds,omitempty"`
	// For dnsd-querylog in a saturation scenario, over its measured runs:
	// the queries it counted (poddns_dns_requests_total), the query log
	// lines it wrote and the lines it dropped (poddns_querylog_*).
	QueryLogRequests *float64 `json:"querylog_requests,omitempty"`
	QueryLogLines    *float64 `json:"querylog_lines,omitempty"`
	QueryLogDropped  *float64 `json:"querylog_dropped,omitempty"`
	// CPUPerQueryUS is, for dnsd and dnsd-querylog in a saturation
	// scenario, the process's CPU time over its measured runs divided by
	// the queries answered (µs): the query log's cost as CPU, which other
	// load on the machine disturbs less than QPS.
	CPUPerQueryUS *float64 `json:"cpu_us_per_query,omitempty"`
	// CPUPerQueryFixedUS is, for every server in a dnsperf scenario, its
	// CPU time per answered query (µs) at the fixed rate of the latency
	// runs: the median of CPUPerQueryFixedRounds, one figure per round.
	// Unlike QPS, it stays comparable when the servers outrun the load
	// generator.
	CPUPerQueryFixedUS     *float64  `json:"cpu_us_per_query_fixed,omitempty"`
	CPUPerQueryFixedRounds []float64 `json:"cpu_us_per_query_fixed_rounds,omitempty"`
}

// WatcherLevel is the API server's cost with some node-local instances
// watching it (bench/README.md, "API-server cost").
type WatcherLevel struct {
	Instances *float64 `json:"instances"`
	// StartCPUSeconds is the API server's CPU time while the instances
	// added to reach this level started and synced (their initial lists),
	// the first time.
	StartCPUSeconds *float64 `json:"start_cpu_seconds,omitempty"`
	// CPUMillisPerSecond is the API server's CPU (ms per wall second)
	// during the churn windows (the median of the rounds'), and RSSMB its
	// resident memory after the last.
	CPUMillisPerSecond *float64 `json:"apiserver_cpu_ms_per_s"`
	RSSMB              *float64 `json:"apiserver_rss_mb,omitempty"`
	// Watch metrics of the API server: events sent to watchers per second
	// during the windows (apiserver_watch_events_total, median), the watch
	// requests open (apiserver_longrunning_requests{verb="WATCH"}) and the
	// registered watchers (apiserver_registered_watchers, when the API
	// server has it) after the last.
	WatchEventsPerSecond *float64 `json:"watch_events_per_s,omitempty"`
	WatchRequests        *float64 `json:"watch_requests,omitempty"`
	RegisteredWatchers   *float64 `json:"registered_watchers,omitempty"`
	// ChurnPerSecond is the API writes per second of the windows (median).
	ChurnPerSecond *float64 `json:"churn_writes_per_s,omitempty"`
}

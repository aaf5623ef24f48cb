package benchresults

// WebhookRun is a bench/results/webhook-*.json file: the admission webhook
// under load (make bench-webhook), which TestAdmissionLoad in
// pkg/policy/admission writes and bench/report reads.
type WebhookRun struct {
	Kind     string            `json:"kind"` // "webhook"
	Started  string            `json:"started"`
	Machine  map[string]any    `json:"machine"`
	Versions map[string]string `json:"versions"`
	Setup    string            `json:"setup"`
	Seconds  *float64          `json:"seconds_per_cell"`
	Rounds   *float64          `json:"rounds"`
	Results  []WebhookResult   `json:"results"`
}

// WebhookResult is one cell of the run: one policy count at one rate.
type WebhookResult struct {
	Policies     *float64 `json:"policies"`
	Matching     *float64 `json:"matching"`
	Rate         *float64 `json:"rate"`
	Requests     *float64 `json:"requests"`
	Errors       *float64 `json:"errors"`
	AchievedRate *float64 `json:"achieved_rate"`
	P50          *float64 `json:"p50_ms"`
	P99          *float64 `json:"p99_ms"`
	P999         *float64 `json:"p999_ms"`
	Max          *float64 `json:"max_ms"`
	CPUPercent   *float64 `json:"cpu_percent"`
	// CPUPerRequest is the server's CPU time per request: less sensitive
	// than latency to other work on a shared machine.
	CPUPerRequest *float64 `json:"cpu_ms_per_request"`
	RSSMB         *float64 `json:"rss_mb"`
	// P99Rounds are the p99 of every round; the cell is the median one.
	P99Rounds []float64 `json:"p99_rounds_ms"`
}

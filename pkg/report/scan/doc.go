// Package scan reads a cluster for package report, and keeps its policy
// reports: the live `webhook report` and the background scan of `webhook
// serve`.
//
// It exists to keep the cluster side of the report apart from the pure
// comparison: listing (paged: limit and continue, one page of pods in memory
// at a time, workloads kept as slim pod templates), the report API detected
// by discovery (openreports.io Report, else wgpolicyk8s.io/v1alpha2
// PolicyReport, else none), and writing reports per namespace, split so
// that no object nears etcd's limit, rewritten only when their results
// change and deleted when their namespace has none left.
//
// It never changes a pod: it gets and lists pods, namespaces and workloads,
// and creates, updates and deletes only the reports labelled
// app.kubernetes.io/managed-by: poddns. Its requests go through the client
// it is given; NewClients makes one limited to a number of requests a second
// (client-side token bucket, burst 1), shared by every request of the scan.
//
// Metrics (registered by NewMetrics):
//
//	poddns_webhook_report_pods_out_of_policy{policy}  gauge: pods with a fail result for the policy in the last scan (label values: the policies in use)
//	poddns_webhook_report_pods_scanned                gauge: pods compared in the last complete scan
//	poddns_webhook_report_scans_total{result}         counter: scans by result (success, error)
//	poddns_webhook_report_scan_duration_seconds       histogram: time a scan takes
package scan

// Package render turns pods read from manifests into reports of what a
// cluster would do with them: the API server's verdict (defaulting,
// validation errors and warnings for the DNS fields) and, for a pod it would
// accept, the /etc/resolv.conf that kubelet and containerd give it on a node
// of a given profile, with kubelet's events or its sandbox error.
//
// It exists to keep the offline CLI's output one contract: [Report] is what
// `webhook render -o json` prints, one object per line, and the text form is
// the same data for people. With DNS policies ([PodWithPolicies]), a report
// describes the pod as the webhook would admit it and adds the policy keys
// ([PolicyReport]) after the seven of the contract; [WritePolicyText] prints
// the patched pods as a YAML stream and [WriteExplanation] what each policy
// did. With node pools (a NodeProfileSet), [PodOnPools] reports on each pool
// the pod can land on, in one report (Report.NodePools). The package is pure apart from writing to the io.Writer it is handed;
// all Kubernetes knowledge lives in resolvconf, policy decisions in policy,
// and reading manifests in manifest.
package render

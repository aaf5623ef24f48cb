package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/poddns/poddns/pkg/memlimit"
	"github.com/poddns/poddns/pkg/serve/sizing"
)

// cpaImage is how a cluster-proportional-autoscaler Deployment is known.
const cpaImage = "registry.k8s.io/cpa/cluster-proportional-autoscaler"

// linearParams are cluster-proportional-autoscaler's linear mode parameters
// (its pkg/autoscaler/controller/linearcontroller), decoded strictly: an
// unknown or misspelt field is ignored by the autoscaler, so it is an error
// here.
type linearParams struct {
	CoresPerReplica           float64 `json:"coresPerReplica"`
	NodesPerReplica           float64 `json:"nodesPerReplica"`
	Min                       int     `json:"min"`
	Max                       int     `json:"max"`
	PreventSinglePointFailure bool    `json:"preventSinglePointFailure"`
	IncludeUnschedulableNodes bool    `json:"includeUnschedulableNodes"`
}

// autoscaler is one cluster-proportional-autoscaler of the render.
type autoscaler struct {
	d                          *appsv1.Deployment
	namespace, configMap, kind string
	target                     string // the Deployment's name
}

// autoscalers finds the cluster-proportional-autoscaler Deployments of r and
// reads their flags.
func autoscalers(r *rendering) ([]autoscaler, []string) {
	var out []autoscaler
	var msgs []string
	for _, d := range all[deployment](r) {
		for _, c := range d.Spec.Template.Spec.Containers {
			if !strings.HasPrefix(c.Image, cpaImage+":") {
				continue
			}
			args := append(slices.Clone(c.Command), c.Args...)
			a := autoscaler{d: d}
			var ok1, ok2, ok3 bool
			a.namespace, ok1 = flagValue(args, "namespace")
			a.configMap, ok2 = flagValue(args, "configmap")
			target, ok3 := flagValue(args, "target")
			if !ok1 || !ok2 || !ok3 {
				msgs = append(msgs, fmt.Sprintf("autoscaler %s: --namespace, --configmap and --target are required (args %q)", d.Name, args))
				continue
			}
			a.kind, a.target, _ = strings.Cut(target, "/")
			out = append(out, a)
		}
	}
	return out, msgs
}

// autoscaled reports which Deployments (namespace/name) an autoscaler of r
// (cluster-proportional-autoscaler or HorizontalPodAutoscaler) scales, and
// by how many of them.
func autoscaled(r *rendering) map[string]int {
	as, _ := autoscalers(r)
	m := map[string]int{}
	for _, a := range as {
		if a.kind == "deployment" {
			m[key(a.namespace, a.target)]++
		}
	}
	for _, h := range all[*autoscalingv2.HorizontalPodAutoscaler](r) {
		if h.Spec.ScaleTargetRef.Kind == "Deployment" {
			m[key(h.Namespace, h.Spec.ScaleTargetRef.Name)]++
		}
	}
	return m
}

// isAutoscaler reports whether d is a cluster-proportional-autoscaler.
func isAutoscaler(d *appsv1.Deployment) bool {
	return slices.ContainsFunc(d.Spec.Template.Spec.Containers, func(c corev1.Container) bool { return strings.HasPrefix(c.Image, cpaImage+":") })
}

// checkAutoscaling: dnsd's Deployment is scaled by one autoscaler: a
// HorizontalPodAutoscaler on CPU utilization (deploy/components/hpa) with
// minReplicas >= 2 whose target is in the render, leaves spec.replicas unset
// and requests CPU, or a cluster-proportional-autoscaler whose --target is a Deployment of the
// render in its --namespace that leaves spec.replicas unset (else every
// apply resets the autoscaler's choice), whose --configmap is in the render
// with linear parameters that decode strictly and keep at least 2 replicas
// (min >= 2, preventSinglePointFailure, a positive ratio, max >= min), and
// whose ServiceAccount may list and watch nodes (cluster-wide) and get the
// ConfigMap and get and update the target's scale (in its namespace). dnsd's
// Service prefers same-zone endpoints (trafficDistribution: PreferSameZone).
func checkAutoscaling(_ *testing.T, r *rendering, _ binaries) []string {
	as, msgs := autoscalers(r)
	for d, n := range autoscaled(r) {
		if n > 1 {
			msgs = append(msgs, fmt.Sprintf("%d autoscalers scale deployment %s: they fight over spec.replicas", n, d))
		}
	}
	if autoscaled(r)[key(dnsdNamespace(r), dnsdName)] == 0 {
		msgs = append(msgs, fmt.Sprintf("no cluster-proportional-autoscaler (%s) nor HorizontalPodAutoscaler targets deployment/%s in %s", cpaImage, dnsdName, dnsdNamespace(r)))
	}
	for _, h := range all[*autoscalingv2.HorizontalPodAutoscaler](r) {
		bad := func(format string, args ...any) {
			msgs = append(msgs, fmt.Sprintf("HorizontalPodAutoscaler %s: ", h.Name)+fmt.Sprintf(format, args...))
		}
		ref := h.Spec.ScaleTargetRef
		d, ok := find[deployment](r, h.Namespace, ref.Name)
		switch {
		case ref.Kind != "Deployment" || ref.APIVersion != "apps/v1":
			bad("scaleTargetRef %s %s: want an apps/v1 Deployment", ref.APIVersion, ref.Kind)
			continue
		case !ok:
			bad("scaleTargetRef deployment/%s is not in the render (namespace %s)", ref.Name, h.Namespace)
			continue
		case d.Spec.Replicas != nil:
			bad("its target deployment/%s sets spec.replicas (%d): every apply would reset the autoscaler's choice", ref.Name, *d.Spec.Replicas)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
			bad("minReplicas %v: want at least 2 (DNS on one replica is a single point of failure)", h.Spec.MinReplicas)
		}
		if h.Spec.MaxReplicas < 2 || (h.Spec.MinReplicas != nil && h.Spec.MaxReplicas < *h.Spec.MinReplicas) {
			bad("maxReplicas %d below minReplicas", h.Spec.MaxReplicas)
		}
		cpu := slices.ContainsFunc(h.Spec.Metrics, func(m autoscalingv2.MetricSpec) bool {
			return m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU &&
				m.Resource.Target.Type == autoscalingv2.UtilizationMetricType && m.Resource.Target.AverageUtilization != nil
		})
		if !cpu {
			bad("no CPU utilization metric")
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Resources.Requests.Cpu().IsZero() {
				bad("container %s of its target has no CPU request: utilization is undefined", c.Name)
			}
		}
	}
	for _, a := range as {
		bad := func(format string, args ...any) {
			msgs = append(msgs, fmt.Sprintf("autoscaler %s: ", a.d.Name)+fmt.Sprintf(format, args...))
		}
		if a.namespace != a.d.Namespace {
			bad("--namespace=%s, but it runs in %s (its Role is there)", a.namespace, a.d.Namespace)
		}
		if a.kind != "deployment" {
			bad("--target=%s/%s: want a deployment", a.kind, a.target)
		} else if d, ok := find[deployment](r, a.namespace, a.target); !ok {
			bad("--target deployment/%s is not in the render (namespace %s)", a.target, a.namespace)
		} else if d.Spec.Replicas != nil {
			bad("its target deployment/%s sets spec.replicas (%d): every apply would reset the autoscaler's choice", a.target, *d.Spec.Replicas)
		}
		if cm, ok := find[configMap](r, a.namespace, a.configMap); !ok {
			bad("--configmap %s is not in the render (namespace %s)", a.configMap, a.namespace)
		} else if raw, ok := cm.Data["linear"]; !ok {
			bad("ConfigMap %s has no linear parameters", a.configMap)
		} else {
			var p linearParams
			dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&p); err != nil {
				bad("ConfigMap %s: linear: %v", a.configMap, err)
			} else {
				if p.CoresPerReplica <= 0 && p.NodesPerReplica <= 0 {
					bad("linear: neither coresPerReplica nor nodesPerReplica is positive")
				}
				if p.Min < 2 || !p.PreventSinglePointFailure {
					bad("linear: min %d, preventSinglePointFailure %v: want min >= 2 and true (DNS on one replica is a single point of failure)", p.Min, p.PreventSinglePointFailure)
				}
				if p.Max != 0 && p.Max < p.Min {
					bad("linear: max %d < min %d", p.Max, p.Min)
				}
			}
		}
		sa := a.d.Spec.Template.Spec.ServiceAccountName
		if !grants(r, a.d.Namespace, sa, "", "", "nodes", "", "list", "watch") {
			bad("ServiceAccount %q may not list and watch nodes cluster-wide", sa)
		}
		if !grants(r, a.d.Namespace, sa, a.namespace, "", "configmaps", a.configMap, "get") {
			bad("ServiceAccount %q may not get ConfigMap %s/%s", sa, a.namespace, a.configMap)
		}
		if !grants(r, a.d.Namespace, sa, a.namespace, "apps", "deployments/scale", a.target, "get", "update") {
			bad("ServiceAccount %q may not get and update the scale of deployment %s/%s", sa, a.namespace, a.target)
		}
	}
	if svc, ok := find[service](r, dnsdNamespace(r), dnsdName); !ok {
		msgs = append(msgs, "no dnsd Service")
	} else if svc.Spec.TrafficDistribution == nil || *svc.Spec.TrafficDistribution != corev1.ServiceTrafficDistributionPreferSameZone {
		msgs = append(msgs, fmt.Sprintf("dnsd Service trafficDistribution %v, want %s", svc.Spec.TrafficDistribution, corev1.ServiceTrafficDistributionPreferSameZone))
	}
	return msgs
}

// grants reports whether ServiceAccount saNamespace/sa is granted every verb
// on group/resource (named name, "" for any) in namespace ns ("" for
// cluster-wide: ClusterRoleBindings only) by the rendered RBAC objects.
func grants(r *rendering, saNamespace, sa, ns, group, resource, name string, verbs ...string) bool {
	bound := func(subjects []rbacv1.Subject) bool {
		return slices.ContainsFunc(subjects, func(s rbacv1.Subject) bool {
			return s.Kind == rbacv1.ServiceAccountKind && s.Name == sa && s.Namespace == saNamespace
		})
	}
	allows := func(rules []rbacv1.PolicyRule, verb string) bool {
		return slices.ContainsFunc(rules, func(p rbacv1.PolicyRule) bool {
			return slices.Contains(p.APIGroups, group) && slices.Contains(p.Resources, resource) &&
				(slices.Contains(p.Verbs, verb) || slices.Contains(p.Verbs, "*")) &&
				(len(p.ResourceNames) == 0 || (name != "" && slices.Contains(p.ResourceNames, name)))
		})
	}
	var rules []rbacv1.PolicyRule
	for _, b := range all[*rbacv1.ClusterRoleBinding](r) {
		if cr, ok := find[*rbacv1.ClusterRole](r, "", b.RoleRef.Name); ok && b.RoleRef.Kind == "ClusterRole" && bound(b.Subjects) {
			rules = append(rules, cr.Rules...)
		}
	}
	if ns != "" {
		for _, b := range all[*rbacv1.RoleBinding](r) {
			if b.Namespace != ns || !bound(b.Subjects) {
				continue
			}
			switch b.RoleRef.Kind {
			case "Role":
				if role, ok := find[*rbacv1.Role](r, ns, b.RoleRef.Name); ok {
					rules = append(rules, role.Rules...)
				}
			case "ClusterRole":
				if cr, ok := find[*rbacv1.ClusterRole](r, "", b.RoleRef.Name); ok {
					rules = append(rules, cr.Rules...)
				}
			}
		}
	}
	for _, v := range verbs {
		if !allows(rules, v) {
			return false
		}
	}
	return true
}

// checkDNSDMemory: dnsd's memory limit holds sizing.BoundMB for Kubernetes'
// published limits (150 000 Pods, 10 000 Services) and is also its request,
// and dnsd is told its limit (checkGoMemoryEnv).
func checkDNSDMemory(_ *testing.T, r *rendering, _ binaries) []string {
	_, c, err := container(r, dnsdNamespace(r), dnsdName, "dnsd")
	if err != nil {
		return []string{err.Error()}
	}
	var msgs []string
	want := sizing.BoundMB(sizing.Cluster{Pods: 150000, Services: 10000})
	limit, request := c.Resources.Limits.Memory(), c.Resources.Requests.Memory()
	if mb := float64(limit.Value()) / (1 << 20); mb < want {
		msgs = append(msgs, fmt.Sprintf("dnsd memory limit %s (%.0f MB) < %.0f MB, sizing.BoundMB for 150000 Pods and 10000 Services", limit, mb, want))
	}
	if request.Cmp(*limit) != 0 {
		msgs = append(msgs, fmt.Sprintf("dnsd memory request %s differs from its limit %s", request, limit))
	}
	return append(msgs, checkGoMemoryEnv("dnsd", c)...)
}

// checkGoMemoryEnv: c, a dnsd container, is told its memory limit through
// the downward API (memlimit.DefaultEnv from its own limits.memory, in
// bytes) and has GOGC set; what names it in the messages.
func checkGoMemoryEnv(what string, c *corev1.Container) []string {
	var msgs []string
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == memlimit.DefaultEnv })
	switch {
	case i < 0:
		msgs = append(msgs, fmt.Sprintf("%s has no %s: its Go heap is not sized to the container", what, memlimit.DefaultEnv))
	case c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.ResourceFieldRef == nil ||
		c.Env[i].ValueFrom.ResourceFieldRef.Resource != "limits.memory" ||
		(c.Env[i].ValueFrom.ResourceFieldRef.ContainerName != "" && c.Env[i].ValueFrom.ResourceFieldRef.ContainerName != c.Name) ||
		(c.Env[i].ValueFrom.ResourceFieldRef.Divisor.Value() > 1):
		msgs = append(msgs, fmt.Sprintf("%s %s is not its own limits.memory in bytes (resourceFieldRef): %+v", what, memlimit.DefaultEnv, c.Env[i]))
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOGC" && e.Value != "" }) {
		msgs = append(msgs, what+" has no GOGC")
	}
	return msgs
}

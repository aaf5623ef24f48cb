package deploy

import (
	"slices"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/poddns/poddns/pkg/memlimit"
)

// TestChecksCatchBreakage breaks one reference at a time in a fresh render
// of deploy/base (or an overlay) and expects the check that guards it to
// say so: a check that cannot fail proves nothing.
func TestChecksCatchBreakage(t *testing.T) {
	byName := map[string]target{}
	for _, tg := range targets(t) {
		byName[tg.name] = tg
	}
	bins := buildBinaries(t)

	webhook := func(r *rendering) *corev1.PodSpec {
		d, _ := find[deployment](r, systemNamespace, webhookName)
		return &d.Spec.Template.Spec
	}
	dnsd := func(r *rendering) *corev1.PodSpec {
		d, _ := find[deployment](r, dnsdNamespace(r), dnsdName)
		return &d.Spec.Template.Spec
	}
	nodeLocal := func(r *rendering) *corev1.PodSpec {
		ds, _ := find[daemonSet](r, "kube-system", nodeLocalName)
		return &ds.Spec.Template.Spec
	}
	nodeLocalConfigMap := func(r *rendering) string {
		for _, v := range nodeLocal(r).Volumes {
			if v.Name == "config" {
				return v.ConfigMap.Name
			}
		}
		t.Fatal("the node-local DaemonSet has no config volume")
		return ""
	}
	dnsdConfigMap := func(r *rendering) *corev1.ConfigMap {
		d, _ := find[deployment](r, dnsdNamespace(r), dnsdName)
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == "config" {
				cm, _ := find[configMap](r, systemNamespace, v.ConfigMap.Name)
				return cm
			}
		}
		t.Fatal("dnsd has no config volume")
		return nil
	}
	tests := []struct {
		name    string
		overlay string
		check   func(*testing.T, *rendering, binaries) []string
		breakIt func(*rendering)
		want    string
	}{
		{"issuerRef to a missing Issuer", "base", checkIssuers, func(r *rendering) {
			c, _ := find[certificate](r, systemNamespace, webhookName)
			c.Spec.IssuerRef.Name = "nope"
		}, "which is not in the render"},
		{"serving certificate signed by the selfSigned issuer", "base", checkIssuers, func(r *rendering) {
			c, _ := find[certificate](r, systemNamespace, webhookName)
			c.Spec.IssuerRef.Name = "poddns-selfsigned"
		}, "is not a CA"},
		{"certificate DNS name of another Service", "base", checkServingCertificate, func(r *rendering) {
			c, _ := find[certificate](r, systemNamespace, webhookName)
			c.Spec.DNSNames = []string{"webhook.poddns-system.svc"}
		}, "lack poddns-webhook.poddns-system.svc"},
		{"inject-ca-from names another Certificate", "base", checkServingCertificate, func(r *rendering) {
			m, _ := find[mwc](r, "", webhookConfig)
			m.Annotations["cert-manager.io/inject-ca-from"] = "poddns-system/other"
		}, "not in the render"},
		{"webhook mounts another Secret", "base", checkServingCertificate, func(r *rendering) {
			c, _ := find[certificate](r, systemNamespace, webhookName)
			c.Spec.SecretName = "other-tls"
		}, "want the Secret \"other-tls\""},
		{"webhook Service on another port", "base", checkServingCertificate, func(r *rendering) {
			s, _ := find[service](r, systemNamespace, webhookName)
			s.Spec.Ports[0].Port = 8443
		}, "has no such port"},
		{"Service targetPort no container has", "base", checkServices, func(r *rendering) {
			s, _ := find[service](r, dnsdNamespace(r), dnsdName)
			s.Spec.Ports[0].TargetPort = intstr.FromInt32(5353)
		}, "targetPort 5353"},
		{"dns targetPort over the wrong protocol", "base", checkServices, func(r *rendering) {
			s, _ := find[service](r, dnsdNamespace(r), dnsdName)
			s.Spec.Ports[0].Protocol = corev1.ProtocolTCP
			s.Spec.Ports[0].TargetPort = intstr.FromString("dns")
		}, "is no TCP port"},
		{"readiness probe on a path the webhook does not serve", "base", checkProbes, func(r *rendering) {
			webhook(r).Containers[0].ReadinessProbe.HTTPGet.Path = "/ready"
		}, "want /readyz"},
		{"liveness probe on the metrics port", "base", checkProbes, func(r *rendering) {
			dnsd(r).Containers[0].LivenessProbe.HTTPGet.Port = intstr.FromString("metrics")
		}, "serves health on"},
		{"dnsd readiness probe slower than its lameduck", "replace-coredns", checkLameduck, func(r *rendering) {
			dnsd(r).Containers[0].ReadinessProbe.PeriodSeconds = 5
		}, "to flush the conntrack entries"},
		{"dnsd killed before its lameduck ends", "base", checkLameduck, func(r *rendering) {
			dnsd(r).TerminationGracePeriodSeconds = ptr.To[int64](15)
		}, "shorter than its lameduck"},
		{"mounted ConfigMap missing", "base", checkVolumes, func(r *rendering) {
			webhook(r).Volumes[1].ConfigMap.Name = "poddns-policy"
		}, "not in the render"},
		{"container port not where the program listens", "base", checkWebhookConfig, func(r *rendering) {
			webhook(r).Containers[0].Ports[0].ContainerPort = 443
		}, "listens on :9443"},
		{"dnsd not on :53", "base", checkDNSDConfig, func(r *rendering) {
			dnsd(r).Containers[0].Ports[0].ContainerPort = 5353
		}, "container port \"dns\" is 5353"},
		{"a dnsd configuration dnsd rejects", "base", checkDNSDConfig, func(r *rendering) {
			cm := dnsdConfigMap(r)
			cm.Data["config.yaml"] = strings.Replace(cm.Data["config.yaml"], "\nttl: 30", "\nttl: 4000", 1)
		}, "dnsd rejects its configuration"},
		{"an unknown dnsd configuration field", "base", checkDNSDConfig, func(r *rendering) {
			cm := dnsdConfigMap(r)
			cm.Data["config.yaml"] += "\nlistenAddress: \":53\"\n"
		}, "unknown field"},
		{"a flag the program does not have", "base", checkArgs, func(r *rendering) {
			dnsd(r).Containers[0].Args = append(dnsd(r).Containers[0].Args, "--listen-address=:53")
		}, "--listen-address is not a flag"},
		{"a policy file left out of the ConfigMap", "base", checkPolicies, func(r *rendering) {
			cm, _ := find[configMap](r, systemNamespace, policiesName)
			delete(cm.Data, "single-request-reopen.yaml")
		}, "lacks deploy/policies/single-request-reopen.yaml"},
		{"an invalid policy", "base", checkPolicies, func(r *rendering) {
			cm, _ := find[configMap](r, systemNamespace, policiesName)
			cm.Data["bad.yaml"] = "apiVersion: poddns.io/v1alpha1\nkind: DNSPolicy\nmetadata: {name: bad}\nspec: {actions: {ndots: 16}}\n"
		}, "do not load"},
		{"dnsd Service address no policy names", "beside-coredns", checkDNSAddress, func(r *rendering) {
			s, _ := find[service](r, dnsdNamespace(r), dnsdName)
			s.Spec.ClusterIP = "10.96.0.54"
		}, "without dnsd's Service address 10.96.0.54"},
		{"added capability", "base", checkSecurity, func(r *rendering) {
			c := &webhook(r).Containers[0]
			c.SecurityContext.Capabilities.Add = []corev1.Capability{"NET_ADMIN"}
		}, "adds capabilities [NET_ADMIN]"},
		{"node-local adds SYS_ADMIN", "node-local", checkNodeLocal, func(r *rendering) {
			c := &nodeLocal(r).Containers[0]
			c.SecurityContext.Capabilities.Add = append(c.SecurityContext.Capabilities.Add, "SYS_ADMIN")
		}, "want exactly [NET_ADMIN NET_BIND_SERVICE]"},
		{"node-local declares a port (a host port)", "node-local", checkNodeLocal, func(r *rendering) {
			c := &nodeLocal(r).Containers[0]
			c.Ports = []corev1.ContainerPort{{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP}}
		}, "host ports"},
		{"node-local memory limit over 64Mi", "node-local", checkNodeLocal, func(r *rendering) {
			nodeLocal(r).Containers[0].Resources.Limits[corev1.ResourceMemory] = resource.MustParse("128Mi")
		}, "want at most 64Mi"},
		{"node-local not told its memory limit", "node-local", checkNodeLocal, func(r *rendering) {
			c := &nodeLocal(r).Containers[0]
			c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == memlimit.DefaultEnv })
		}, "the node-local dnsd has no CONTAINER_MEMORY_LIMIT"},
		{"node-local kubelet config mounted writable", "node-local", checkNodeLocal, func(r *rendering) {
			for i, m := range nodeLocal(r).Containers[0].VolumeMounts {
				if m.Name == "kubelet-config" {
					nodeLocal(r).Containers[0].VolumeMounts[i].ReadOnly = false
				}
			}
		}, "not mounted read-only from the host"},
		{"a node-local configuration dnsd rejects", "node-local", checkNodeLocal, func(r *rendering) {
			cm, _ := find[configMap](r, "kube-system", nodeLocalConfigMap(r))
			cm.Data["config.yaml"] = strings.Replace(cm.Data["config.yaml"], "ips: [169.254.20.10,", "ips: [127.0.0.1,", 1)
		}, "not an address a node can hold"},
		{"node-local lock file not shared", "node-local", checkNodeLocal, func(r *rendering) {
			for i, v := range nodeLocal(r).Volumes {
				if v.Name == "run" {
					nodeLocal(r).Volumes[i].VolumeSource = corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
				}
			}
		}, "instances on one node would not share it"},
		{"writable root filesystem", "base", checkSecurity, func(r *rendering) {
			f := false
			dnsd(r).Containers[0].SecurityContext.ReadOnlyRootFilesystem = &f
		}, "readOnlyRootFilesystem is not true"},
		{"webhook down to one replica", "base", checkSecurity, func(r *rendering) {
			d, _ := find[deployment](r, systemNamespace, webhookName)
			d.Spec.Replicas = nil
		}, "replicas unset (1) and no autoscaler targets it"},
		{"dnsd sets replicas under its autoscaler", "base", checkAutoscaling, func(r *rendering) {
			d, _ := find[deployment](r, dnsdNamespace(r), dnsdName)
			two := int32(2)
			d.Spec.Replicas = &two
		}, "sets spec.replicas"},
		{"autoscaler targets a missing Deployment", "base", checkAutoscaling, func(r *rendering) {
			autoscalerArg(r, "--target=", "--target=deployment/coredns")
		}, "deployment/coredns is not in the render"},
		{"autoscaler reads a missing ConfigMap", "replace-coredns", checkAutoscaling, func(r *rendering) {
			autoscalerArg(r, "--configmap=", "--configmap=dns-autoscaler")
		}, "--configmap dns-autoscaler is not in the render"},
		{"autoscaler floor of one replica", "base", checkAutoscaling, func(r *rendering) {
			cm, _ := find[configMap](r, systemNamespace, autoscalerName)
			cm.Data["linear"] = strings.Replace(cm.Data["linear"], `"min":2`, `"min":1`, 1)
		}, "want min >= 2"},
		{"autoscaler parameter misspelt", "base", checkAutoscaling, func(r *rendering) {
			cm, _ := find[configMap](r, systemNamespace, autoscalerName)
			cm.Data["linear"] = strings.Replace(cm.Data["linear"], "nodesPerReplica", "nodesPerReplicas", 1)
		}, `unknown field "nodesPerReplicas"`},
		{"autoscaler may not update the scale", "base", checkAutoscaling, func(r *rendering) {
			role, _ := find[*rbacv1.Role](r, systemNamespace, autoscalerName)
			for i := range role.Rules {
				role.Rules[i].Verbs = slices.DeleteFunc(role.Rules[i].Verbs, func(v string) bool { return v == "update" })
			}
		}, "may not get and update the scale of deployment poddns-system/poddns-dnsd"},
		{"autoscaler may not count nodes", "base", checkAutoscaling, func(r *rendering) {
			b, _ := find[*rbacv1.ClusterRoleBinding](r, "", autoscalerName)
			b.Subjects[0].Namespace = "kube-system"
		}, "may not list and watch nodes"},
		{"dnsd memory limit below the formula", "base", checkDNSDMemory, func(r *rendering) {
			dnsd(r).Containers[0].Resources.Limits[corev1.ResourceMemory] = resource.MustParse("256Mi")
		}, "< 311 MB"},
		{"dnsd told another container's limit", "base", checkDNSDMemory, func(r *rendering) {
			for _, e := range dnsd(r).Containers[0].Env {
				if e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil {
					e.ValueFrom.ResourceFieldRef.ContainerName = "sidecar"
				}
			}
		}, "is not its own limits.memory"},
		{"HorizontalPodAutoscaler floor of one replica", "hpa", checkAutoscaling, func(r *rendering) {
			h, _ := find[*autoscalingv2.HorizontalPodAutoscaler](r, systemNamespace, dnsdName)
			one := int32(1)
			h.Spec.MinReplicas = &one
		}, "want at least 2"},
		{"HorizontalPodAutoscaler without a CPU metric", "hpa", checkAutoscaling, func(r *rendering) {
			h, _ := find[*autoscalingv2.HorizontalPodAutoscaler](r, systemNamespace, dnsdName)
			h.Spec.Metrics[0].Resource.Name = corev1.ResourceMemory
		}, "no CPU utilization metric"},
		{"HorizontalPodAutoscaler beside the cluster-proportional one", "base", checkAutoscaling, func(r *rendering) {
			h := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: dnsdName, Namespace: systemNamespace},
				Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MinReplicas: ptr.To[int32](2), MaxReplicas: 4,
					ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: dnsdName}}}
			r.objects = append(r.objects, object{typed: h, u: &unstructured.Unstructured{}})
		}, "2 autoscalers scale deployment poddns-system/poddns-dnsd"},
		{"dnsd config ConfigMap with a content hash", "base", checkLiveReload, func(r *rendering) {
			cm := dnsdConfigMap(r)
			cm.Name += "-4gk59g6kc4"
			for i, v := range dnsd(r).Volumes {
				if v.Name == "config" {
					dnsd(r).Volumes[i].ConfigMap.Name = cm.Name
				}
			}
		}, "content hash"},
		{"dnsd config mounted with subPath", "base", checkLiveReload, func(r *rendering) {
			m := &dnsd(r).Containers[0].VolumeMounts[0]
			m.MountPath, m.SubPath = "/etc/poddns/dnsd/config.yaml", "config.yaml"
		}, "subPath"},
		{"node-local static records mounted with subPath", "node-local", checkLiveReload, func(r *rendering) {
			for i, m := range nodeLocal(r).Containers[0].VolumeMounts {
				if m.Name == "static" {
					nodeLocal(r).Containers[0].VolumeMounts[i].MountPath, nodeLocal(r).Containers[0].VolumeMounts[i].SubPath = "/etc/poddns/dnsd-static/hosts", "hosts"
				}
			}
		}, "subPath"},
		{"dnsd config without reload", "base", checkLiveReload, func(r *rendering) {
			cm := dnsdConfigMap(r)
			cm.Data["config.yaml"] = strings.Replace(cm.Data["config.yaml"], "\nreload: 2s", "\n", 1)
		}, "does not set reload"},
		{"a static hosts file dnsd would not load", "base", checkLiveReload, func(r *rendering) {
			cm, _ := find[configMap](r, dnsdNamespace(r), "poddns-dnsd-static")
			cm.Data["hosts"] += "10.0.0.300 bad.example\n"
		}, "would not start"},
		{"dnsd moved out of kube-system", "replace-coredns", checkCoreDNSTakeover, func(r *rendering) {
			for _, o := range r.objects {
				if d, ok := o.typed.(deployment); ok && d.Name == dnsdName {
					d.Namespace = systemNamespace
				}
				if s, ok := o.typed.(service); ok && s.Name == dnsdName {
					s.Namespace = systemNamespace
				}
			}
		}, "does not select dnsd's pods"},
		{"dnsd pods without k8s-app: kube-dns", "replace-coredns", checkCoreDNSTakeover, func(r *rendering) {
			d, _ := find[deployment](r, dnsdNamespace(r), dnsdName)
			delete(d.Spec.Template.Labels, "k8s-app")
		}, "does not select dnsd's pods"},
		{"dnsd Service off kube-dns's address", "replace-coredns", checkCoreDNSTakeover, func(r *rendering) {
			s, _ := find[service](r, dnsdNamespace(r), dnsdName)
			s.Spec.ClusterIP = "10.96.0.53"
		}, "want kube-dns's 10.96.0.10"},
		{"CoreDNS's label beside CoreDNS", "beside-coredns", checkCoreDNSTakeover, func(r *rendering) {
			s, _ := find[service](r, dnsdNamespace(r), dnsdName)
			s.Spec.Selector["k8s-app"] = "kube-dns"
		}, "outside replace-coredns"},
		{"dnsd Service without same-zone preference", "base", checkAutoscaling, func(r *rendering) {
			s, _ := find[service](r, dnsdNamespace(r), dnsdName)
			s.Spec.TrafficDistribution = nil
		}, "trafficDistribution"},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			tg, ok := byName[tt.overlay]
			if !ok {
				t.Fatalf("no kustomization %s", tt.overlay)
			}
			r := render(t, tg)
			if msgs := tt.check(t, r, bins); len(msgs) > 0 {
				t.Fatalf("the unbroken %s render already fails: %q", tt.overlay, msgs)
			}
			tt.breakIt(r)
			msgs := tt.check(t, r, bins)
			for _, m := range msgs {
				if strings.Contains(m, tt.want) {
					return
				}
			}
			t.Errorf("broken %s: got %q, want a message containing %q", tt.overlay, msgs, tt.want)
		})
	}
}

// autoscalerName is the cluster-proportional-autoscaler's Deployment,
// ConfigMap and RBAC objects in deploy/.
const autoscalerName = "poddns-dnsd-autoscaler"

// autoscalerArg replaces the autoscaler container's argument starting with
// prefix by arg.
func autoscalerArg(r *rendering, prefix, arg string) {
	d, _ := find[deployment](r, namespaceOf(r, autoscalerName), autoscalerName)
	args := d.Spec.Template.Spec.Containers[0].Args
	for i, a := range args {
		if strings.HasPrefix(a, prefix) {
			args[i] = arg
		}
	}
}

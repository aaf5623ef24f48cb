package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/serve/static"
)

// kustomizeHash is the suffix kustomize's configMapGenerator appends to a
// name unless told not to: a dash and ten characters of its alphabet (hex
// with 0 1 3 a e replaced by g h k m t).
var kustomizeHash = regexp.MustCompile(`-[bcdfghkmt2456789]{10}$`)

// namespaceOf returns the namespace of the rendered Deployment name
// (systemNamespace when the render has none): dnsd's is kube-system where it
// takes over from CoreDNS (replace-coredns), poddns-system elsewhere.
func namespaceOf(r *rendering, name string) string {
	for _, d := range all[deployment](r) {
		if d.Name == name {
			return d.Namespace
		}
	}
	return systemNamespace
}

// dnsdNamespace is the namespace of dnsd's Deployment and Service.
func dnsdNamespace(r *rendering) string { return namespaceOf(r, dnsdName) }

// dnsdWorkloads returns every dnsd of the render (the central Deployment,
// the node-local DaemonSet) as a Deployment-shaped value, with its dnsd
// container.
func dnsdWorkloads(r *rendering) (map[string]*appsv1.Deployment, map[string]*corev1.Container) {
	ws, cs := map[string]*appsv1.Deployment{}, map[string]*corev1.Container{}
	add := func(what string, meta metav1.ObjectMeta, tmpl corev1.PodTemplateSpec) {
		for i := range tmpl.Spec.Containers {
			if tmpl.Spec.Containers[i].Name == "dnsd" {
				ws[what] = &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Template: tmpl}}
				cs[what] = &ws[what].Spec.Template.Spec.Containers[i]
			}
		}
	}
	for _, d := range all[deployment](r) {
		add("Deployment "+key(d.Namespace, d.Name), d.ObjectMeta, d.Spec.Template)
	}
	for _, ds := range all[daemonSet](r) {
		add("DaemonSet "+key(ds.Namespace, ds.Name), ds.ObjectMeta, ds.Spec.Template)
	}
	return ws, cs
}

// checkLiveReload (issue 14, live reload): every dnsd reads its
// configuration and its static hosts files from ConfigMaps with fixed names
// (no kustomize hash: a hashed name makes every change a new ConfigMap and
// a rollout, and dnsd's watch never fires), mounted as directories (a
// subPath mount keeps the file it started with: kubelet's ..data swap never
// reaches it), and its configuration sets reload to a positive interval
// (explicitly, not by a default that could change). The hosts files
// rendered load as dnsd loads them at start.
func checkLiveReload(t *testing.T, r *rendering, _ binaries) []string {
	var msgs []string
	ws, cs := dnsdWorkloads(r)
	if len(ws) == 0 {
		return []string{"no dnsd Deployment or DaemonSet"}
	}
	for what, d := range ws {
		c := cs[what]
		bad := func(format string, args ...any) {
			msgs = append(msgs, what+": "+fmt.Sprintf(format, args...))
		}
		path, ok := flagValue(append(append([]string{}, c.Command...), c.Args...), "config")
		if !ok {
			bad("no --config")
			continue
		}
		if _, msg := reloadableMount(r, d, c, path); msg != "" {
			bad("--config %s: %s", path, msg)
			continue
		}
		cfg, err := readDNSDConfig(r, d, c)
		if err != nil {
			bad("%v", err)
			continue
		}
		for i, b := range cfg.Static {
			if b.HostsFile == "" {
				continue
			}
			field, p := fmt.Sprintf("static[%d].hostsFile", i), b.HostsFile
			cm, msg := reloadableMount(r, d, c, p)
			if msg != "" {
				bad("%s %s: %s", field, p, msg)
				continue
			}
			data, err := configFile(r, d, c, p)
			if err != nil {
				bad("%s: %v", field, err)
				continue
			}
			hosts := filepath.Join(t.TempDir(), "hosts")
			if err := os.WriteFile(hosts, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			sc := static.Config{{HostsFile: hosts, Fallthrough: true, Reload: new(configfile.Duration(0))}}
			s, err := static.New(sc, static.Deps{})
			if err != nil {
				bad("%s (ConfigMap %s): dnsd would not start with it: %v", field, cm, err)
				continue
			}
			s.Close()
		}
		raw, err := configFile(r, d, c, path)
		if err != nil {
			bad("%v", err)
			continue
		}
		var top map[string]any
		if err := yaml.Unmarshal([]byte(raw), &top); err != nil {
			bad("--config: %v", err)
			continue
		}
		if _, set := top["reload"]; !set || cfg.Reload.D() <= 0 {
			bad("its configuration does not set reload to a positive interval (reload: %v, set in the file: %v): a change of the ConfigMap would wait for a restart", cfg.Reload, set)
		}
	}
	return msgs
}

// reloadableMount returns the ConfigMap a container reads path from, and
// what is wrong with it for a live reload: a hashed name, or a subPath
// mount.
func reloadableMount(r *rendering, d *appsv1.Deployment, c *corev1.Container, path string) (string, string) {
	for _, m := range c.VolumeMounts {
		rel, err := filepath.Rel(m.MountPath, path)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		if rel == "." || m.SubPath != "" || m.SubPathExpr != "" {
			return "", fmt.Sprintf("mounted with subPath %q at %s: kubelet never updates a subPath mount; mount the ConfigMap as a directory", m.SubPath+m.SubPathExpr, m.MountPath)
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			if v.ConfigMap == nil {
				return "", fmt.Sprintf("volume %q is not a ConfigMap", v.Name)
			}
			if _, ok := find[configMap](r, d.Namespace, v.ConfigMap.Name); !ok {
				return "", fmt.Sprintf("ConfigMap %s is not in the render", key(d.Namespace, v.ConfigMap.Name))
			}
			if kustomizeHash.MatchString(v.ConfigMap.Name) {
				return v.ConfigMap.Name, fmt.Sprintf("ConfigMap %s has a content hash in its name: a change would roll the pods instead of reloading (generator option disableNameSuffixHash)", v.ConfigMap.Name)
			}
			return v.ConfigMap.Name, ""
		}
		return "", fmt.Sprintf("mount names volume %q, which the pod does not have", m.Name)
	}
	return "", "under none of the container's volume mounts"
}

// coreDNSEgress is the NetworkPolicy clusters use to let pods reach
// CoreDNS (the Kubernetes documentation's and most policy libraries'
// shape): egress on port 53 to the pods labelled k8s-app: kube-dns in the
// namespace kube-system.
func coreDNSEgress() *networkingv1.NetworkPolicy {
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	port := func(p corev1.Protocol) networkingv1.NetworkPolicyPort {
		return networkingv1.NetworkPolicyPort{Protocol: &p, Port: new(intstr.FromInt32(53))}
	}
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "allow-dns", Namespace: "shop"},
		Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}},
					PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
				}},
				Ports: []networkingv1.NetworkPolicyPort{port(udp), port(tcp)},
			}},
		},
	}
}

// peerSelects reports whether a NetworkPolicy peer selects a pod with
// these labels in the namespace ns (whose only label is the one the API
// server sets on every namespace, kubernetes.io/metadata.name), as a CNI
// evaluates it: both selectors must match, a missing namespaceSelector
// means the policy's own namespace.
func peerSelects(np *networkingv1.NetworkPolicy, peer networkingv1.NetworkPolicyPeer, ns string, podLabels map[string]string) (bool, error) {
	if peer.IPBlock != nil {
		return false, nil
	}
	if peer.NamespaceSelector == nil {
		if ns != np.Namespace {
			return false, nil
		}
	} else {
		sel, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
		if err != nil {
			return false, err
		}
		if !sel.Matches(labels.Set{"kubernetes.io/metadata.name": ns}) {
			return false, nil
		}
	}
	if peer.PodSelector == nil {
		return true, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
	if err != nil {
		return false, err
	}
	return sel.Matches(labels.Set(podLabels)), nil
}

// checkCoreDNSTakeover (issue 14, taking over from CoreDNS): in the
// replace-coredns overlay, dnsd's Service has kube-dns's address, and
// dnsd's pods are ones an existing "allow DNS egress to CoreDNS"
// NetworkPolicy selects (in kube-system, labelled k8s-app: kube-dns, the
// label in the Deployment's selector and the Service's too), and the port
// the policy opens is the one dnsd's pods serve DNS on. Other renders must
// not carry CoreDNS's label (beside CoreDNS, its Service would select both).
func checkCoreDNSTakeover(_ *testing.T, r *rendering, _ binaries) []string {
	d, c, err := container(r, dnsdNamespace(r), dnsdName, "dnsd")
	if err != nil {
		return []string{err.Error()}
	}
	svc, ok := find[service](r, d.Namespace, dnsdName)
	if !ok {
		return []string{"no dnsd Service beside its Deployment in " + d.Namespace}
	}
	np := coreDNSEgress()
	selected := false
	for _, peer := range np.Spec.Egress[0].To {
		ok, err := peerSelects(np, peer, d.Namespace, d.Spec.Template.Labels)
		if err != nil {
			return []string{err.Error()}
		}
		selected = selected || ok
	}
	if r.name != "replace-coredns" {
		if selected || svc.Spec.Selector["k8s-app"] != "" {
			return []string{"dnsd's pods or Service carry CoreDNS's label k8s-app: kube-dns outside replace-coredns"}
		}
		return nil
	}
	var msgs []string
	if svc.Spec.ClusterIP != "10.96.0.10" {
		msgs = append(msgs, fmt.Sprintf("dnsd's Service has clusterIP %q, want kube-dns's 10.96.0.10", svc.Spec.ClusterIP))
	}
	if !selected {
		msgs = append(msgs, fmt.Sprintf("a NetworkPolicy allowing DNS egress to k8s-app: kube-dns in kube-system does not select dnsd's pods (namespace %s, labels %v)", d.Namespace, d.Spec.Template.Labels))
	}
	if d.Spec.Selector == nil || d.Spec.Selector.MatchLabels["k8s-app"] != "kube-dns" {
		msgs = append(msgs, "dnsd's Deployment selector lacks k8s-app: kube-dns")
	}
	if svc.Spec.Selector["k8s-app"] != "kube-dns" {
		msgs = append(msgs, fmt.Sprintf("dnsd's Service selector %v lacks k8s-app: kube-dns", svc.Spec.Selector))
	}
	for _, p := range np.Spec.Egress[0].Ports {
		if _, err := containerPort(c, p.Port.String(), *p.Protocol); err != nil {
			msgs = append(msgs, fmt.Sprintf("the policy opens %s %s, which dnsd's pods do not serve: %v", *p.Protocol, p.Port, err))
		}
	}
	return msgs
}

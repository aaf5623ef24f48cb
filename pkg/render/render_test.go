package render_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/poddns/poddns/pkg/manifest"
	"github.com/poddns/poddns/pkg/policy/policytest"
	"github.com/poddns/poddns/pkg/render"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// profile builds a node profile with the host file content "nameserver
// 10.0.0.2 / search ec2.internal / options edns0" unless cfg names another.
func items(t *testing.T, yaml string) []manifest.Item {
	t.Helper()
	return decode(t, yaml).Pods
}

func decode(t *testing.T, yaml string) *manifest.Set {
	t.Helper()
	set, err := manifest.Decode(strings.NewReader(yaml), "pods.yaml")
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return set
}

func TestPodJSON(t *testing.T) {
	tests := []struct {
		name       string
		node       resolvconf.NodeConfig
		manifest   string
		want       string // the JSON line
		wantFailed bool
	}{
		{
			name:     "ClusterFirst by defaulting",
			node:     policytest.StandardNode,
			manifest: "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec: {containers: [{name: c}]}\n",
			want:     `{"name":"web","namespace":"shop","resolvConf":"search shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal\nnameserver 10.96.0.10\noptions ndots:5\n","events":[],"validationErrors":[],"warnings":[],"error":"","clientNotes":[]}`,
		},
		{
			name:     "hostNetwork ClusterFirst falls back to the node file",
			node:     policytest.StandardNode,
			manifest: "apiVersion: v1\nkind: Pod\nmetadata: {name: hn}\nspec: {hostNetwork: true, containers: [{name: c}]}\n",
			want:     `{"name":"hn","namespace":"default","resolvConf":"search ec2.internal\nnameserver 10.0.0.2\noptions edns0\n","events":[],"validationErrors":[],"warnings":[],"error":"","clientNotes":[]}`,
		},
		{
			name:       "None without dnsConfig in a Deployment is rejected at the template path",
			node:       policytest.StandardNode,
			manifest:   "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: ns}\nspec: {template: {spec: {dnsPolicy: None, containers: [{name: c}]}}}\n",
			want:       "{\"name\":\"d\",\"namespace\":\"ns\",\"resolvConf\":\"\",\"events\":[],\"validationErrors\":[\"spec.template.spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None\"],\"warnings\":[],\"error\":\"\",\"clientNotes\":[]}",
			wantFailed: true,
		},
		{
			name:       "every validation error, in the API server's order",
			node:       policytest.StandardNode,
			manifest:   "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  dnsPolicy: clusterFirst\n  dnsConfig: {nameservers: [010.0.0.1], searches: [Example.com.], options: [{value: x}]}\n  containers: [{name: c}]\n",
			want:       `{"name":"bad","namespace":"default","resolvConf":"","events":[],"validationErrors":["spec.dnsPolicy: Unsupported value: \"clusterFirst\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"","spec.dnsConfig.nameservers[0]: Invalid value: \"010.0.0.1\": must not have leading 0s","spec.dnsConfig.searches[0]: Invalid value: \"Example.com\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*')","spec.dnsConfig.options[0]: Required value: must not be empty"],"warnings":[],"error":"","clientNotes":[]}`,
			wantFailed: true,
		},
		{
			name:     "warning for a non-canonical IPv6 nameserver",
			node:     policytest.StandardNode,
			manifest: "apiVersion: v1\nkind: Pod\nmetadata: {name: v6}\nspec: {dnsPolicy: None, dnsConfig: {nameservers: [\"2001:DB8:0:0:0:0:0:1\"]}, containers: [{name: c}]}\n",
			want:     `{"name":"v6","namespace":"default","resolvConf":"nameserver 2001:DB8:0:0:0:0:0:1\n","events":[],"validationErrors":[],"warnings":["spec.dnsConfig.nameservers[0]: IPv6 address \"2001:DB8:0:0:0:0:0:1\" should be in RFC 5952 canonical format (\"2001:db8::1\")"],"error":"","clientNotes":[]}`,
		},
		{
			name:     "node without cluster DNS: MissingClusterDNS on Node and Pod",
			node:     resolvconf.NodeConfig{ClusterDomain: "cluster.local", ResolvConf: "/etc/resolv.conf", ResolvConfData: []byte("nameserver 10.0.0.2\n")},
			manifest: "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ns, uid: \"1234\"}\nspec: {containers: [{name: c}]}\n",
			want:     `{"name":"p","namespace":"ns","resolvConf":"nameserver 10.0.0.2\n","events":[{"object":"Node","type":"Warning","reason":"MissingClusterDNS","message":"kubelet does not have ClusterDNS IP configured and cannot create Pod using \"ClusterFirst\" policy. Falling back to \"Default\" policy."},{"object":"Pod","type":"Warning","reason":"MissingClusterDNS","message":"pod: \"p_ns(1234)\". kubelet does not have ClusterDNS IP configured and cannot create Pod using \"ClusterFirst\" policy. Falling back to \"Default\" policy."}],"validationErrors":[],"warnings":[],"error":"","clientNotes":[]}`,
		},
		{
			name:     "ndots above 15: a client note, the file as written",
			node:     policytest.StandardNode,
			manifest: "apiVersion: v1\nkind: Pod\nmetadata: {name: nd}\nspec: {dnsPolicy: None, dnsConfig: {nameservers: [10.0.0.2], options: [{name: ndots, value: \"20\"}]}, containers: [{name: c}]}\n",
			want:     `{"name":"nd","namespace":"default","resolvConf":"nameserver 10.0.0.2\noptions ndots:20\n","events":[],"validationErrors":[],"warnings":[],"error":"","clientNotes":["ndots:20 acts as ndots:15: glibc and musl cap ndots at 15"]}`,
		},
		{
			name:       "unreadable node file fails every pod, even None",
			node:       resolvconf.NodeConfig{ClusterDNS: []string{"10.96.0.10"}, ResolvConf: "/nonexistent/resolv.conf"},
			manifest:   "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {dnsPolicy: None, dnsConfig: {nameservers: [1.1.1.1]}, containers: [{name: c}]}\n",
			want:       `{"name":"p","namespace":"default","resolvConf":"","events":[],"validationErrors":[],"warnings":[],"error":"open /nonexistent/resolv.conf: no such file or directory","clientNotes":[]}`,
			wantFailed: true,
		},
		{
			name:     "resolv-conf empty and Default: kubelet's loopback fallback",
			node:     resolvconf.NodeConfig{ClusterDNS: []string{"10.96.0.10"}},
			manifest: "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: cj}\nspec: {schedule: '@daily', jobTemplate: {spec: {template: {spec: {dnsPolicy: Default, containers: [{name: c}]}}}}}\n",
			want:     `{"name":"cj","namespace":"default","resolvConf":"search .\nnameserver 127.0.0.1\n","events":[],"validationErrors":[],"warnings":[],"error":"","clientNotes":[]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			its := items(t, tt.manifest)
			if len(its) != 1 {
				t.Fatalf("Items = %d, want 1", len(its))
			}
			before := its[0].Pod.DeepCopy()
			reports := render.Pods(its, policytest.Profile(t, tt.node))
			if !reflect.DeepEqual(its[0].Pod, before) {
				t.Errorf("Pods changed the item's pod")
			}
			var buf bytes.Buffer
			if err := render.WriteJSON(&buf, reports); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSuffix(buf.String(), "\n"); got != tt.want {
				t.Errorf("JSON:\n got %s\nwant %s", got, tt.want)
			}
			checkContract(t, buf.Bytes())
			if got := render.AnyFailed(reports); got != tt.wantFailed {
				t.Errorf("AnyFailed = %v, want %v", got, tt.wantFailed)
			}
		})
	}
}

// checkContract checks every line is one object with exactly the seven keys
// of the contract plus clientNotes (added later: the contract allows new
// keys, never changes to the seven), lists as arrays (never null) and strings
// as strings.
func checkContract(t *testing.T, out []byte) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	for _, line := range lines {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("Line %q is not a JSON object: %v", line, err)
		}
		var keys []string
		for k := range obj {
			keys = append(keys, k)
		}
		if len(obj) != 8 {
			t.Errorf("Keys = %q, want the seven of the contract and clientNotes", keys)
		}
		for _, k := range []string{"name", "namespace", "resolvConf", "error"} {
			if v, ok := obj[k]; !ok || !strings.HasPrefix(string(v), `"`) {
				t.Errorf("Key %q = %s, want a string", k, v)
			}
		}
		for _, k := range []string{"events", "validationErrors", "warnings", "clientNotes"} {
			if v, ok := obj[k]; !ok || !strings.HasPrefix(string(v), "[") {
				t.Errorf("Key %q = %s, want an array", k, v)
			}
		}
	}
}

func TestWriteJSONOneLinePerPod(t *testing.T) {
	its := items(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec: {dnsPolicy: Bogus, containers: [{name: c}]}\n")
	reports := render.Pods(its, policytest.Profile(t, policytest.StandardNode))
	var buf bytes.Buffer
	if err := render.WriteJSON(&buf, reports); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 2 {
		t.Errorf("Lines = %d, want 2:\n%s", n, buf.String())
	}
	checkContract(t, buf.Bytes())
	if !render.AnyFailed(reports) || reports[0].Failed() || !reports[1].Failed() {
		t.Errorf("Failed = %v, %v; want false, true", reports[0].Failed(), reports[1].Failed())
	}
}

func TestWriteText(t *testing.T) {
	its := items(t, `apiVersion: v1
kind: Pod
metadata: {name: ok}
spec:
  dnsConfig: {nameservers: [10.0.0.3, 10.0.0.4, 10.0.0.5]}
  containers: [{name: c}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: bad, namespace: shop}
spec: {template: {spec: {dnsPolicy: None, containers: [{name: c}]}}}
---
apiVersion: v1
kind: Pod
metadata: {name: empty}
spec: {dnsPolicy: Default, containers: [{name: c}]}
`)
	node := policytest.StandardNode
	reports := render.Pods(its[:2], policytest.Profile(t, node))
	node.ResolvConfData = []byte("# nothing\n")
	reports = append(reports, render.Pod(its[2], policytest.Profile(t, node)))
	var buf bytes.Buffer
	if err := render.WriteText(&buf, reports); err != nil {
		t.Fatal(err)
	}
	want := `# Pod/default/ok (pods.yaml)
search default.svc.cluster.local svc.cluster.local cluster.local ec2.internal
nameserver 10.96.0.10
nameserver 10.0.0.3
nameserver 10.0.0.4
options ndots:5
# event: Pod Warning DNSConfigForming: Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 10.96.0.10 10.0.0.3 10.0.0.4

# Deployment/shop/bad (pods.yaml)
# rejected by the API server: no pod, no resolv.conf
# validation error: spec.template.spec.dnsConfig: Required value: must provide ` + "`dnsConfig` when `dnsPolicy` is None" + `

# Pod/default/empty (pods.yaml)
# (empty resolv.conf)
`
	if buf.String() != want {
		t.Errorf("Text:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestNodeNotes(t *testing.T) {
	p := policytest.Profile(t, resolvconf.NodeConfig{ClusterDNS: []string{"10.96.0.10", "not-an-ip"}, ResolvConf: "/etc/resolv.conf", ResolvConfData: []byte("nameserver\n")})
	got := render.NodeNotes(p)
	want := []string{
		"node event: Warning CheckLimitsForResolvConf: nameserver list is empty ",
		`kubelet log: Invalid clusterDNS IP "not-an-ip"`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("NodeNotes = %q, want %q", got, want)
	}
	if notes := render.NodeNotes(policytest.Profile(t, policytest.StandardNode)); len(notes) != 0 {
		t.Errorf("NodeNotes of a clean node = %q, want none", notes)
	}
}

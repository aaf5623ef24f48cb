package nodeprofile_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/poddns/poddns/internal/testenv"
	"github.com/poddns/poddns/pkg/nodeprofile"
	"github.com/poddns/poddns/pkg/resolvconf"
)

// parseOptions binds Options to a fresh flag set and parses args; "$DIR" in an
// argument stands for dir.
func parseOptions(t *testing.T, dir string, args []string) *nodeprofile.Options {
	t.Helper()
	var o nodeprofile.Options
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.AddFlags(fs)
	expanded := make([]string, len(args))
	for i, a := range args {
		expanded[i] = strings.ReplaceAll(a, "$DIR", dir)
	}
	if err := fs.Parse(expanded); err != nil {
		t.Fatalf("Parse(%q): %v", expanded, err)
	}
	return &o
}

const (
	profileAll = `apiVersion: poddns.io/v1alpha1
kind: NodeProfile
clusterDomain: corp.internal
clusterDNS: [10.32.0.10, fd00::a]
nodeIPs: [192.0.2.7]
resolvConf: /run/systemd/resolve/resolv.conf
`
	profileContent = `apiVersion: poddns.io/v1alpha1
kind: NodeProfile
clusterDNS: [10.32.0.10]
resolvConfContent: |
  nameserver 192.0.2.53
  search corp.example
`
	profileRelative = `apiVersion: poddns.io/v1alpha1
kind: NodeProfile
resolvConf: node-resolv.conf
`
	profileNoFile = `apiVersion: poddns.io/v1alpha1
kind: NodeProfile
resolvConf: ""
clusterDNS: []
clusterDomain: ""
`
	kubeletFull = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
clusterDNS:
- 10.100.0.10
clusterDomain: k8s.example
resolvConf: /run/systemd/resolve/resolv.conf
cgroupDriver: systemd
`
	kubeletMinimal = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
`
	kubeletNoFile = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
clusterDNS: [10.100.0.10]
clusterDomain: k8s.example
resolvConf: ""
`
	kubeletRelative = `{"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration", "resolvConf": "resolv.conf"}`
)

func TestOptionsNodeConfig(t *testing.T) {
	embedded := nodeprofile.DefaultResolvConf()
	tests := []struct {
		name  string
		files map[string]string // written to $DIR
		args  []string
		want  resolvconf.NodeConfig
	}{
		{
			name: "built-in defaults",
			want: resolvconf.NodeConfig{ClusterDomain: "cluster.local", ClusterDNS: []string{"10.96.0.10"}, ResolvConf: "/etc/resolv.conf", ResolvConfData: embedded},
		},
		{
			name: "cluster-dns comma-separated and repeated",
			args: []string{"--cluster-dns", "10.0.0.10,fd00::10", "--cluster-dns=10.0.0.11"},
			want: resolvconf.NodeConfig{ClusterDomain: "cluster.local", ClusterDNS: []string{"10.0.0.10", "fd00::10", "10.0.0.11"}, ResolvConf: "/etc/resolv.conf", ResolvConfData: embedded},
		},
		{
			name: "explicit empty cluster-dns means none",
			args: []string{"--cluster-dns="},
			want: resolvconf.NodeConfig{ClusterDomain: "cluster.local", ClusterDNS: []string{}, ResolvConf: "/etc/resolv.conf", ResolvConfData: embedded},
		},
		{
			name: "explicit empty resolv-conf with =",
			args: []string{`--resolv-conf=`},
			want: resolvconf.NodeConfig{ClusterDomain: "cluster.local", ClusterDNS: []string{"10.96.0.10"}, ResolvConf: ""},
		},
		{
			name: "explicit empty resolv-conf as a separate argument",
			args: []string{"--resolv-conf", ""},
			want: resolvconf.NodeConfig{ClusterDomain: "cluster.local", ClusterDNS: []string{"10.96.0.10"}, ResolvConf: ""},
		},
		{
			name: "resolv-conf path is read from disk, not the embedded file",
			args: []string{"--resolv-conf", "/etc/resolv.conf"},
			want: resolvconf.NodeConfig{ClusterDomain: "cluster.local", ClusterDNS: []string{"10.96.0.10"}, ResolvConf: "/etc/resolv.conf"},
		},
		{
			name: "node-ip repeated",
			args: []string{"--node-ip", "192.0.2.1", "--node-ip", "2001:db8::1", "--resolv-conf="},
			want: resolvconf.NodeConfig{ClusterDomain: "cluster.local", ClusterDNS: []string{"10.96.0.10"}, NodeIPs: []string{"192.0.2.1", "2001:db8::1"}},
		},
		{
			name:  "profile sets every field",
			files: map[string]string{"p.yaml": profileAll},
			args:  []string{"--profile", "$DIR/p.yaml"},
			want:  resolvconf.NodeConfig{ClusterDomain: "corp.internal", ClusterDNS: []string{"10.32.0.10", "fd00::a"}, NodeIPs: []string{"192.0.2.7"}, ResolvConf: "/run/systemd/resolve/resolv.conf"},
		},
		{
			name:  "flags override the profile field by field",
			files: map[string]string{"p.yaml": profileAll},
			args:  []string{"--cluster-domain", "flag.local", "--profile=$DIR/p.yaml", "--resolv-conf="},
			want:  resolvconf.NodeConfig{ClusterDomain: "flag.local", ClusterDNS: []string{"10.32.0.10", "fd00::a"}, NodeIPs: []string{"192.0.2.7"}, ResolvConf: ""},
		},
		{
			name:  "profile content keeps the default path and other defaults",
			files: map[string]string{"p.yaml": profileContent},
			args:  []string{"--profile", "$DIR/p.yaml"},
			want:  resolvconf.NodeConfig{ClusterDomain: "cluster.local", ClusterDNS: []string{"10.32.0.10"}, ResolvConf: "/etc/resolv.conf", ResolvConfData: []byte("nameserver 192.0.2.53\nsearch corp.example\n")},
		},
		{
			name:  "a resolv-conf flag drops the profile's content",
			files: map[string]string{"p.yaml": profileContent},
			args:  []string{"--profile", "$DIR/p.yaml", "--resolv-conf", "/etc/resolv.conf"},
			want:  resolvconf.NodeConfig{ClusterDomain: "cluster.local", ClusterDNS: []string{"10.32.0.10"}, ResolvConf: "/etc/resolv.conf"},
		},
		{
			name:  "profile relative resolvConf is relative to the profile",
			files: map[string]string{"p.yaml": profileRelative},
			args:  []string{"--profile", "$DIR/p.yaml"},
			want:  resolvconf.NodeConfig{ClusterDomain: "cluster.local", ClusterDNS: []string{"10.96.0.10"}, ResolvConf: "$DIR/node-resolv.conf"},
		},
		{
			name:  "profile explicit empty values",
			files: map[string]string{"p.yaml": profileNoFile},
			args:  []string{"--profile", "$DIR/p.yaml"},
			want:  resolvconf.NodeConfig{ClusterDomain: "", ClusterDNS: []string{}, ResolvConf: ""},
		},
		{
			name:  "kubelet config",
			files: map[string]string{"k.yaml": kubeletFull},
			args:  []string{"--kubelet-config", "$DIR/k.yaml"},
			want:  resolvconf.NodeConfig{ClusterDomain: "k8s.example", ClusterDNS: []string{"10.100.0.10"}, ResolvConf: "/run/systemd/resolve/resolv.conf"},
		},
		{
			name:  "kubelet config leaving fields out gets kubelet's defaults",
			files: map[string]string{"k.yaml": kubeletMinimal},
			args:  []string{"--kubelet-config", "$DIR/k.yaml"},
			want:  resolvconf.NodeConfig{ClusterDomain: "", ClusterDNS: []string{}, ResolvConf: "/etc/resolv.conf", ResolvConfData: embedded},
		},
		{
			name:  "kubelet config with resolvConf empty",
			files: map[string]string{"k.yaml": kubeletNoFile},
			args:  []string{"--kubelet-config", "$DIR/k.yaml"},
			want:  resolvconf.NodeConfig{ClusterDomain: "k8s.example", ClusterDNS: []string{"10.100.0.10"}, ResolvConf: ""},
		},
		{
			name:  "kubelet config in JSON with a relative resolvConf",
			files: map[string]string{"k.json": kubeletRelative},
			args:  []string{"--kubelet-config", "$DIR/k.json"},
			want:  resolvconf.NodeConfig{ClusterDomain: "", ClusterDNS: []string{}, ResolvConf: "$DIR/resolv.conf"},
		},
		{
			name:  "flags override the kubelet config",
			files: map[string]string{"k.yaml": kubeletFull},
			args:  []string{"--kubelet-config", "$DIR/k.yaml", "--cluster-dns", "10.0.0.53", "--resolv-conf", ""},
			want:  resolvconf.NodeConfig{ClusterDomain: "k8s.example", ClusterDNS: []string{"10.0.0.53"}, ResolvConf: ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				testenv.WriteFile(t, dir, name, content)
			}
			o := parseOptions(t, dir, tt.args)
			got, warnings, err := o.NodeConfig()
			if err != nil {
				t.Fatalf("NodeConfig: %v", err)
			}
			if len(warnings) > 0 {
				t.Errorf("Unexpected warnings: %q", warnings)
			}
			want := tt.want
			want.ResolvConf = strings.ReplaceAll(want.ResolvConf, "$DIR", dir)
			if !reflect.DeepEqual(normalise(got), normalise(want)) {
				t.Errorf("NodeConfig:\n got %#v\nwant %#v", normalise(got), normalise(want))
			}
			if want.ClusterDNS != nil && len(want.ClusterDNS) == 0 && len(got.ClusterDNS) != 0 {
				t.Errorf("ClusterDNS = %q, want none", got.ClusterDNS)
			}
		})
	}
}

// normalise makes nil and empty slices compare equal and shows data as text.
type shown struct {
	ClusterDomain, ResolvConf string
	ClusterDNS, NodeIPs       []string
	Data                      *string
}

func normalise(c resolvconf.NodeConfig) shown {
	s := shown{ClusterDomain: c.ClusterDomain, ResolvConf: c.ResolvConf}
	s.ClusterDNS = append([]string{}, c.ClusterDNS...)
	s.NodeIPs = append([]string{}, c.NodeIPs...)
	if c.ResolvConfData != nil {
		d := string(c.ResolvConfData)
		s.Data = &d
	}
	return s
}

func TestOptionsErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		args  []string
		want  []string // substrings of the error
	}{
		{
			name:  "profile and kubelet config together",
			files: map[string]string{"p.yaml": profileAll, "k.yaml": kubeletFull},
			args:  []string{"--profile", "$DIR/p.yaml", "--kubelet-config", "$DIR/k.yaml"},
			want:  []string{"--profile and --kubelet-config are mutually exclusive"},
		},
		{
			name: "missing profile",
			args: []string{"--profile", "$DIR/nope.yaml"},
			want: []string{"node profile: open", "nope.yaml", "no such file"},
		},
		{
			name: "missing kubelet config",
			args: []string{"--kubelet-config", "$DIR/nope.yaml"},
			want: []string{"read kubelet config", "nope.yaml", "no such file"},
		},
		{
			name:  "unknown profile field names file and field",
			files: map[string]string{"p.yaml": "apiVersion: poddns.io/v1alpha1\nkind: NodeProfile\nclusterDNs: [10.0.0.10]\n"},
			args:  []string{"--profile", "$DIR/p.yaml"},
			want:  []string{"node profile", "p.yaml", "line 3: clusterDNs: unknown field"},
		},
		{
			name: "bad node IP",
			args: []string{"--node-ip", "192.0.2.1,192.0.2.2"},
			want: []string{"node profile", "bad --node-ip"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				testenv.WriteFile(t, dir, name, content)
			}
			o := parseOptions(t, dir, tt.args)
			_, _, err := o.NodeProfile()
			if err == nil {
				t.Fatalf("NodeProfile succeeded, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestNodeProfileResolvConf(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteFile(t, dir, "bad.conf", "nameserver\n")
	testenv.WriteFile(t, dir, "good.conf", "nameserver 192.0.2.53\nsearch corp.example\noptions rotate\n")
	tests := []struct {
		name       string
		args       []string
		wantErr    string // HostError substring, "" for none
		wantHost   *resolvconf.File
		wantChecks bool // CheckLimits reports an event
	}{
		{
			name:     "embedded default",
			wantHost: &resolvconf.File{Nameservers: []string{"10.0.0.2"}, Searches: []string{"ec2.internal"}, Options: []string{"edns0", "trust-ad"}},
		},
		{
			name:     "file read from disk",
			args:     []string{"--resolv-conf", "$DIR/good.conf"},
			wantHost: &resolvconf.File{Nameservers: []string{"192.0.2.53"}, Searches: []string{"corp.example"}, Options: []string{"rotate"}},
		},
		{
			name:       "missing file is kubelet's error for every pod",
			args:       []string{"--resolv-conf", "$DIR/missing.conf"},
			wantErr:    "open " + "$DIR/missing.conf: no such file or directory",
			wantChecks: true,
		},
		{
			name:       "unparsable file",
			args:       []string{"--resolv-conf", "$DIR/bad.conf"},
			wantErr:    "Encountered error while parsing resolv conf file. Error: nameserver list is empty ",
			wantChecks: true,
		},
		{
			name: "no file",
			args: []string{"--resolv-conf="},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := parseOptions(t, dir, tt.args)
			p, _, err := o.NodeProfile()
			if err != nil {
				t.Fatalf("NodeProfile: %v", err)
			}
			wantErr := strings.ReplaceAll(tt.wantErr, "$DIR", dir)
			switch got := p.HostError(); {
			case wantErr == "" && got != nil:
				t.Errorf("HostError = %v, want none", got)
			case wantErr != "" && (got == nil || !strings.Contains(got.Error(), wantErr)):
				t.Errorf("HostError = %v, want %q", got, wantErr)
			}
			if !reflect.DeepEqual(p.Host(), tt.wantHost) {
				t.Errorf("Host = %#v, want %#v", p.Host(), tt.wantHost)
			}
			if got := p.CheckLimits() != nil; got != tt.wantChecks {
				t.Errorf("CheckLimits reported %v, want %v", p.CheckLimits(), tt.wantChecks)
			}
		})
	}
}

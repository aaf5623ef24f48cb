package nodesetup

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "defaults", cfg: Config{}},
		{name: "transparent dual stack", cfg: Config{IPs: []string{"169.254.20.10", "10.96.0.10", "fd00:10:96::a"}}},
		{name: "bad ip", cfg: Config{IPs: []string{"169.254.20"}}, wantErr: `ip "169.254.20"`},
		{name: "loopback", cfg: Config{IPs: []string{"127.0.0.1"}}, wantErr: "loopback"},
		{name: "unspecified", cfg: Config{IPs: []string{"::"}}, wantErr: "unspecified"},
		{name: "twice", cfg: Config{IPs: []string{"169.254.20.10", "::ffff:169.254.20.10"}}, wantErr: "given twice"},
		{name: "zone", cfg: Config{IPs: []string{"fe80::1%eth0"}}, wantErr: "no zone"},
		{name: "long interface", cfg: Config{Interface: "poddns0123456789"}, wantErr: "interface"},
		{name: "slash interface", cfg: Config{Interface: "a/b"}, wantErr: "interface"},
		{name: "short interval", cfg: Config{SyncInterval: &metav1.Duration{Duration: time.Millisecond}}, wantErr: "syncInterval"},
		{name: "relative lock", cfg: Config{LockFile: "run/x.lock"}, wantErr: "lockFile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.WithDefaults().Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate: %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.Interface != "poddns0" || c.IPs[0] != "169.254.20.10" || !*c.SetupInterface || !*c.SetupRules || c.SkipTeardown ||
		c.LockFile != "/run/poddns/poddns0.lock" || c.Table != "poddns-nodelocal" || c.SyncInterval.Duration != 10*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
}

// TestRuleset: 2 directions x 2 protocols per address in each raw chain,
// one direction in each accept chain, and a digest that changes with the
// addresses (so a check sees a stale ruleset as wrong).
func TestRuleset(t *testing.T) {
	addrs, err := Config{IPs: []string{"169.254.20.10", "fd00::a"}}.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	rs := buildRuleset("t", addrs)
	want := map[string]int{chainPrerouting: 8, chainOutput: 8, chainInput: 4, chainOutAccept: 4}
	for _, c := range rs.chains {
		if len(c.rules) != want[c.chain.Name] {
			t.Errorf("chain %s: %d rules, want %d", c.chain.Name, len(c.rules), want[c.chain.Name])
		}
	}
	again := buildRuleset("t", addrs)
	if rs.digest() != again.digest() {
		t.Errorf("digest not stable: %s, %s", rs.digest(), again.digest())
	}
	other := buildRuleset("t", addrs[:1])
	if rs.digest() == other.digest() {
		t.Errorf("digest %s the same for other addresses", rs.digest())
	}
	if got := (flow{addrs[1], 6, true}).String(); got != "tcp src [fd00::a]:53" {
		t.Errorf("flow: %s", got)
	}
}

package resolvconf

import (
	"net"
	"net/netip"
	"testing"
)

func TestParseIPSloppy(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" for nil
	}{
		{"10.96.0.10", "10.96.0.10"},
		{"010.096.000.010", "10.96.0.10"}, // leading zeros are decimal
		{"0000000001.2.3.4", "1.2.3.4"},
		{"256.1.1.1", ""},
		{"1.2.3", ""},
		{"1.2.3.4.5", ""},
		{"1.2.3.4 ", ""},
		{" 1.2.3.4", ""},
		{"1.2.3.-4", ""},
		{"", ""},
		{"abc", ""},
		{"FD00:10:96:0:0:0:0:A", "fd00:10:96::a"},
		{"fd00::a", "fd00::a"},
		{"::", "::"},
		{"::1", "::1"},
		{"1::", "1::"},
		{"::ffff:1.2.3.4", "1.2.3.4"},
		{"::ffff:001.002.003.004", "1.2.3.4"},
		{"0:0:0:0:0:ffff:1.2.3.4", "1.2.3.4"},
		{"1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"},
		{"1:2:3:4:5:1.2.3.4", ""},
		{"00001::", "1::"}, // more than four hex digits, leading zeros
		{"10000::", ""},
		{"fe80::1%eth0", ""},
		{"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"},
		{"1:2:3:4:5:6:7:8:9", ""},
		{"1:2:3:4:5:6:7::8", ""},
		{"1::2::3", ""},
		{":1::", ""},
		{"1:", ""},
		{"1.2.3.4:53", ""},
		{"[::1]", ""},
		{"::1.2.3.4", "::102:304"},
	}
	for _, tt := range tests {
		ip := parseIPSloppy(tt.in)
		got := ""
		if ip != nil {
			got = ip.String()
		}
		if got != tt.want {
			t.Errorf("parseIPSloppy(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzParseIPSloppy checks that the sloppy parser accepts every address the
// strict standard parser accepts, with the same value.
func FuzzParseIPSloppy(f *testing.F) {
	for _, s := range []string{"10.0.0.1", "::1", "fe80::1", "::ffff:1.2.3.4", "010.1.1.1", "1:2:3:4:5:6:7:8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sloppy := parseIPSloppy(s)
		addr, err := netip.ParseAddr(s)
		if err != nil || addr.Zone() != "" {
			return
		}
		if sloppy == nil {
			t.Fatalf("parseIPSloppy(%q) = nil, netip accepts it", s)
		}
		if !sloppy.Equal(net.IP(addr.AsSlice())) {
			t.Fatalf("parseIPSloppy(%q) = %v, netip = %v", s, sloppy, addr)
		}
	})
}

package resolvconf

import "net"

// parseIPSloppy parses an IP address the way Kubernetes' legacy fields and
// kubelet's --cluster-dns and --node-ip do (k8s.io/utils/net.ParseIPSloppy, the
// Go 1.16 net.ParseIP): IPv4 octets may carry leading zeros, which are read as
// decimal; IPv6 groups may carry any number of leading zeros; zones are not
// accepted. The address family is chosen by whichever of '.' or ':' comes first.
func parseIPSloppy(s string) net.IP {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '.':
			return parseSloppyIPv4(s)
		case ':':
			return parseSloppyIPv6(s)
		}
	}
	return nil
}

// sloppyLimit bounds a numeric field while it is read; it matches the limit of
// the historical parser, so that an absurdly long run of digits is rejected at
// the same point.
const sloppyLimit = 0xFFFFFF

// decimalPrefix reads decimal digits at the start of s.
func decimalPrefix(s string) (n, width int, ok bool) {
	for width < len(s) && s[width] >= '0' && s[width] <= '9' {
		n = n*10 + int(s[width]-'0')
		if n >= sloppyLimit {
			return 0, width, false
		}
		width++
	}
	return n, width, width > 0
}

// hexPrefix reads hexadecimal digits at the start of s.
func hexPrefix(s string) (n, width int, ok bool) {
	for ; width < len(s); width++ {
		var d int
		switch c := s[width]; {
		case c >= '0' && c <= '9':
			d = int(c - '0')
		case c >= 'a' && c <= 'f':
			d = int(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = int(c-'A') + 10
		default:
			return n, width, width > 0
		}
		n = n*16 + d
		if n >= sloppyLimit {
			return 0, width, false
		}
	}
	return n, width, width > 0
}

func parseSloppyIPv4(s string) net.IP {
	var octets [4]byte
	for i := range octets {
		if i > 0 {
			if len(s) == 0 || s[0] != '.' {
				return nil
			}
			s = s[1:]
		}
		n, w, ok := decimalPrefix(s)
		if !ok || n > 0xFF {
			return nil
		}
		octets[i] = byte(n)
		s = s[w:]
	}
	if len(s) != 0 {
		return nil
	}
	return net.IPv4(octets[0], octets[1], octets[2], octets[3])
}

func parseSloppyIPv6(s string) net.IP {
	ip := make(net.IP, net.IPv6len)
	gap := -1 // byte index where "::" stands
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		gap = 0
		s = s[2:]
		if s == "" {
			return ip
		}
	}
	i := 0
	for i < net.IPv6len {
		n, w, ok := hexPrefix(s)
		if !ok || n > 0xFFFF {
			return nil
		}
		if w < len(s) && s[w] == '.' {
			// A trailing dotted quad fills the last four bytes.
			if (gap < 0 && i != net.IPv6len-net.IPv4len) || i+net.IPv4len > net.IPv6len {
				return nil
			}
			v4 := parseSloppyIPv4(s)
			if v4 == nil {
				return nil
			}
			copy(ip[i:], v4[12:16])
			i += net.IPv4len
			s = ""
			break
		}
		ip[i], ip[i+1] = byte(n>>8), byte(n)
		i += 2
		s = s[w:]
		if s == "" {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return nil
		}
		s = s[1:]
		if s[0] == ':' {
			if gap >= 0 {
				return nil
			}
			gap = i
			s = s[1:]
			if s == "" {
				break
			}
		}
	}
	if s != "" {
		return nil
	}
	if i < net.IPv6len {
		if gap < 0 {
			return nil
		}
		shift := net.IPv6len - i
		copy(ip[gap+shift:], ip[gap:i])
		clear(ip[gap : gap+shift])
	} else if gap >= 0 {
		return nil
	}
	return ip
}

package nodesetup

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Link kinds the interface can be.
const (
	KindDummy  = "dummy"
	KindBridge = "bridge"
)

// ifaceResult says what ensureInterface did.
type ifaceResult struct {
	kind    string // the link's kind
	created bool   // the link was made now
	added   int    // addresses added
	removed int    // addresses removed (not ours any more)
	quieted bool   // a bridge's ARP or multicast turned off
}

// ensureInterface makes the link if it is missing (a dummy where the
// kernel has that type, else a bridge with no ports), sets it up, and
// makes its addresses exactly want. A link of that name that is neither a
// dummy nor a bridge is someone else's: an error, never touched.
func ensureInterface(h *netlink.Handle, name string, want []netip.Addr) (ifaceResult, error) {
	var res ifaceResult
	link, err := h.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		if link, res.kind, err = addLink(h, name); err != nil {
			return res, err
		}
		res.created = true
	case err != nil:
		return res, fmt.Errorf("interface %s: %w", name, err)
	default:
		res.kind = link.Type()
		if res.kind != KindDummy && res.kind != KindBridge {
			return res, fmt.Errorf("interface %s exists and is a %s link, not a dummy or bridge made for node-local DNS: refusing to use it", name, res.kind)
		}
	}
	if res.kind == KindBridge {
		// Quiet like a dummy: no ARP, no multicast, no multicast snooping
		// (a bridge would join 224.0.0.106 and send IGMP reports from a
		// listen IP, flows that conntrack tracks).
		if br, ok := link.(*netlink.Bridge); ok && (br.MulticastSnooping == nil || *br.MulticastSnooping) {
			off := false
			only := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Index: link.Attrs().Index, Name: name}, MulticastSnooping: &off}
			if err := h.LinkModify(only); err != nil {
				return res, fmt.Errorf("interface %s: multicast snooping off: %w", name, err)
			}
			res.quieted = true
		}
		if link.Attrs().Flags&net.FlagMulticast != 0 {
			if err := h.LinkSetMulticastOff(link); err != nil {
				return res, fmt.Errorf("interface %s: multicast off: %w", name, err)
			}
			res.quieted = true
		}
		if link.Attrs().RawFlags&unix.IFF_NOARP == 0 {
			if err := h.LinkSetARPOff(link); err != nil {
				return res, fmt.Errorf("interface %s: arp off: %w", name, err)
			}
			res.quieted = true
		}
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(link); err != nil {
			return res, fmt.Errorf("interface %s: set up: %w", name, err)
		}
	}
	have, err := linkAddrs(h, link)
	if err != nil {
		return res, err
	}
	for _, a := range want {
		if _, ok := have[a]; ok {
			continue
		}
		if err := h.AddrAdd(link, hostAddr(a)); err != nil && !errors.Is(err, unix.EEXIST) {
			return res, fmt.Errorf("interface %s: add %s: %w", name, a, err)
		}
		res.added++
	}
	for a, na := range have {
		if slices.Contains(want, a) {
			continue
		}
		if err := h.AddrDel(link, &na); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return res, fmt.Errorf("interface %s: remove %s: %w", name, a, err)
		}
		res.removed++
	}
	return res, nil
}

// addLink makes the link: a dummy, or a bridge with no ports where the
// kernel has no dummy type (EOPNOTSUPP: CONFIG_DUMMY off and no module).
func addLink(h *netlink.Handle, name string) (netlink.Link, string, error) {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	dummyErr := h.LinkAdd(&netlink.Dummy{LinkAttrs: attrs})
	kind := KindDummy
	if dummyErr != nil {
		if errors.Is(dummyErr, unix.EEXIST) {
			return nil, "", fmt.Errorf("interface %s: appeared while being made: %w", name, dummyErr)
		}
		kind = KindBridge
		off := false // no IGMP/MLD snooping: the bridge would join 224.0.0.106
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs, MulticastSnooping: &off}); err != nil {
			return nil, "", fmt.Errorf("interface %s: neither a dummy (%v) nor a bridge could be made: %w", name, dummyErr, err)
		}
	}
	link, err := h.LinkByName(name)
	if err != nil {
		return nil, "", fmt.Errorf("interface %s: made, then: %w", name, err)
	}
	return link, kind, nil
}

// linkAddrs lists the link's addresses, IPv6 link-local ones (which the
// kernel adds by itself) left out.
func linkAddrs(h *netlink.Handle, link netlink.Link) (map[netip.Addr]netlink.Addr, error) {
	var list []netlink.Addr
	var err error
	for range 5 { // a dump interrupted by a concurrent change is retried
		if list, err = h.AddrList(link, netlink.FAMILY_ALL); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("interface %s: list addresses: %w", link.Attrs().Name, err)
	}
	out := map[netip.Addr]netlink.Addr{}
	for _, na := range list {
		a, ok := netip.AddrFromSlice(na.IP)
		if !ok {
			continue
		}
		a = a.Unmap()
		if a.Is6() && a.IsLinkLocalUnicast() {
			continue
		}
		out[a] = na
	}
	return out, nil
}

// hostAddr is a as a host address (/32 or /128); IPv6 without duplicate
// address detection, which would keep it tentative (unbindable) for a
// while, or for ever on a link without carrier.
func hostAddr(a netip.Addr) *netlink.Addr {
	bits := a.BitLen()
	na := &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, bits)}}
	if a.Is6() {
		na.Flags = unix.IFA_F_NODAD
	}
	return na
}

// deleteInterface removes the link (and with it its addresses); a missing
// link is not an error.
func deleteInterface(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("interface %s: %w", name, err)
	}
	if k := link.Type(); k != KindDummy && k != KindBridge {
		return fmt.Errorf("interface %s is a %s link, not one made for node-local DNS: left alone", name, k)
	}
	if err := h.LinkDel(link); err != nil {
		return fmt.Errorf("interface %s: delete: %w", name, err)
	}
	return nil
}

package nodesetup

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// ruleset is the desired content of the table: chains in order, each with
// its rules. Every rule carries a comment naming it and a digest of the
// whole ruleset, so a check can tell an exact copy from anything else.
type ruleset struct {
	table  *nftables.Table
	chains []chainRules
}

type chainRules struct {
	chain *nftables.Chain
	rules []*nftables.Rule
}

// Chain names in the table.
const (
	chainPrerouting = "prerouting"
	chainOutput     = "output"
	chainInput      = "input-accept"
	chainOutAccept  = "output-accept"
)

// flow is one direction of DNS traffic of one address: to it (dst, the
// destination port) or from it (src, the source port).
type flow struct {
	addr  netip.Addr
	proto byte // unix.IPPROTO_UDP or unix.IPPROTO_TCP
	src   bool
}

func (f flow) String() string {
	p := "udp"
	if f.proto == unix.IPPROTO_TCP {
		p = "tcp"
	}
	dir := "dst"
	if f.src {
		dir = "src"
	}
	return fmt.Sprintf("%s %s %s", p, dir, netip.AddrPortFrom(f.addr, DNSPort))
}

// buildRuleset returns the rules for addrs in table: NOTRACK to and from
// each address on port 53 (UDP and TCP) in prerouting and output at raw
// priority, and accept rules in input and output at filter priority.
func buildRuleset(table string, addrs []netip.Addr) ruleset {
	t := &nftables.Table{Name: table, Family: nftables.TableFamilyINet}
	accept := nftables.ChainPolicyAccept
	chain := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return &nftables.Chain{Name: name, Table: t, Hooknum: hook, Priority: prio, Type: nftables.ChainTypeFilter, Policy: &accept}
	}
	var flows []flow
	for _, a := range addrs {
		for _, p := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
			flows = append(flows, flow{a, p, false}, flow{a, p, true})
		}
	}
	rs := ruleset{table: t, chains: []chainRules{
		{chain: chain(chainPrerouting, nftables.ChainHookPrerouting, nftables.ChainPriorityRaw)},
		{chain: chain(chainOutput, nftables.ChainHookOutput, nftables.ChainPriorityRaw)},
		{chain: chain(chainInput, nftables.ChainHookInput, nftables.ChainPriorityFilter)},
		{chain: chain(chainOutAccept, nftables.ChainHookOutput, nftables.ChainPriorityFilter)},
	}}
	for i := range rs.chains {
		c := &rs.chains[i]
		for _, f := range flows {
			var verdict expr.Any = &expr.Notrack{}
			switch c.chain.Name {
			case chainInput:
				if f.src {
					continue // what arrives for us
				}
				verdict = &expr.Verdict{Kind: expr.VerdictAccept}
			case chainOutAccept:
				if !f.src {
					continue // what we send
				}
				verdict = &expr.Verdict{Kind: expr.VerdictAccept}
			}
			exprs := append(matchFlow(f), &expr.Counter{}, verdict)
			c.rules = append(c.rules, &nftables.Rule{Table: t, Chain: c.chain, Exprs: exprs})
		}
	}
	digest := rs.digest()
	for _, c := range rs.chains {
		for j, r := range c.rules {
			r.UserData = userdata.AppendString(nil, userdata.TypeComment, ruleComment(digest, c.chain.Name, j))
		}
	}
	return rs
}

// ruleComment names rule j of a chain: "poddns <digest> <chain>/<j>".
func ruleComment(digest, chain string, j int) string {
	return fmt.Sprintf("poddns %s %s/%d", digest, chain, j)
}

// digest identifies the ruleset: chains, hooks, priorities and flows.
func (rs ruleset) digest() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s %d\n", rs.table.Name, rs.table.Family)
	for _, c := range rs.chains {
		fmt.Fprintf(h, "%s %d %d %s\n", c.chain.Name, *c.chain.Hooknum, *c.chain.Priority, c.chain.Type)
		for _, r := range c.rules {
			fmt.Fprintf(h, "  %v\n", describe(r.Exprs))
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// describe is a stable text of expressions, for the digest.
func describe(exprs []expr.Any) string {
	var b strings.Builder
	for _, e := range exprs {
		fmt.Fprintf(&b, "%T%+v;", e, e)
	}
	return b.String()
}

// matchFlow matches f in an inet table: the address family, the transport
// protocol, the address and the port.
func matchFlow(f flow) []expr.Any {
	nfproto, addrOff := byte(unix.NFPROTO_IPV4), uint32(16) // IPv4 daddr
	if f.addr.Is6() {
		nfproto, addrOff = unix.NFPROTO_IPV6, 24 // IPv6 daddr
	}
	portOff := uint32(2) // destination port
	if f.src {
		portOff = 0
		addrOff -= uint32(f.addr.BitLen() / 8) // saddr precedes daddr
	}
	port := binary.BigEndian.AppendUint16(nil, DNSPort)
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{f.proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: addrOff, Len: uint32(f.addr.BitLen() / 8)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: f.addr.AsSlice()},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: portOff, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: port},
	}
}

// rulesInPlace reports whether the kernel holds exactly rs: the table, its
// chains with their hooks, priorities and types, and in each chain the
// rules of rs in order (recognized by their comments) and nothing else.
// It returns why not, for the log.
func rulesInPlace(cc *nftables.Conn, rs ruleset) (ok bool, why string, err error) {
	tables, err := cc.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, "", fmt.Errorf("list tables: %w", err)
	}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == rs.table.Name }) {
		return false, "table missing", nil
	}
	all, err := cc.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, "", fmt.Errorf("list chains: %w", err)
	}
	have := map[string]*nftables.Chain{}
	for _, c := range all {
		if c.Table != nil && c.Table.Name == rs.table.Name {
			have[c.Name] = c
		}
	}
	if len(have) != len(rs.chains) {
		return false, fmt.Sprintf("%d chains, want %d", len(have), len(rs.chains)), nil
	}
	for _, want := range rs.chains {
		c := have[want.chain.Name]
		switch {
		case c == nil:
			return false, "chain " + want.chain.Name + " missing", nil
		case c.Hooknum == nil || *c.Hooknum != *want.chain.Hooknum || c.Priority == nil || *c.Priority != *want.chain.Priority ||
			c.Type != want.chain.Type || c.Policy == nil || *c.Policy != *want.chain.Policy:
			return false, "chain " + want.chain.Name + " changed", nil
		}
		rules, err := cc.GetRules(rs.table, c)
		if err != nil {
			return false, "", fmt.Errorf("list rules of %s: %w", c.Name, err)
		}
		if len(rules) != len(want.rules) {
			return false, fmt.Sprintf("chain %s has %d rules, want %d", c.Name, len(rules), len(want.rules)), nil
		}
		for j, r := range rules {
			got, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			if w, _ := userdata.GetString(want.rules[j].UserData, userdata.TypeComment); got != w {
				return false, fmt.Sprintf("chain %s rule %d is %q, want %q", c.Name, j, got, w), nil
			}
		}
	}
	return true, "", nil
}

// replaceRules makes the table hold exactly rs in one transaction: the
// table is created if missing, deleted with whatever it held, and made
// again with rs. Packets see either the old rules or the new ones.
func replaceRules(cc *nftables.Conn, rs ruleset) error {
	cc.AddTable(rs.table)
	cc.DelTable(rs.table)
	cc.AddTable(rs.table)
	for _, c := range rs.chains {
		cc.AddChain(c.chain)
		for _, r := range c.rules {
			cc.AddRule(r)
		}
	}
	if err := cc.Flush(); err != nil {
		return fmt.Errorf("nftables table inet %s: %w", rs.table.Name, err)
	}
	return nil
}

// deleteRules removes the table, if it exists.
func deleteRules(cc *nftables.Conn, table string) error {
	t := &nftables.Table{Name: table, Family: nftables.TableFamilyINet}
	cc.AddTable(t) // so that deleting never fails for a missing table
	cc.DelTable(t)
	if err := cc.Flush(); err != nil {
		return fmt.Errorf("nftables: delete table inet %s: %w", table, err)
	}
	return nil
}

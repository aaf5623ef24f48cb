package migrate

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/poddns/poddns/pkg/configfile"
	"github.com/poddns/poddns/pkg/corefile"
	"github.com/poddns/poddns/pkg/serve/aaaa"
	"github.com/poddns/poddns/pkg/serve/cache"
	"github.com/poddns/poddns/pkg/serve/cluster"
	"github.com/poddns/poddns/pkg/serve/daemon"
	"github.com/poddns/poddns/pkg/serve/forward"
	"github.com/poddns/poddns/pkg/serve/querylog"
	"github.com/poddns/poddns/pkg/serve/rewrite"
	"github.com/poddns/poddns/pkg/serve/static"
)

// translator holds a translation in progress.
type translator struct {
	in  Input
	res *Result

	mainPort string
	// seen records the shared directives (one setting in dnsd for every
	// zone) by name: the text of the first, to compare the others with.
	seen map[string]string
	// forwardOpts are the forward options set by the first forward, by
	// name, to compare the others' with.
	forwardOpts                        map[string]string
	sawKubernetes, sawHealth, sawReady bool
	readyAddr                          string
	stubZones                          map[string]bool
}

func (t *translator) ok(d corefile.Directive, name string) {
	t.res.Translated = append(t.res.Translated, Item{Pos: d.Pos, Directive: name, Text: d.String()})
}

func (t *translator) skip(d corefile.Directive, name, reason string, args ...any) {
	t.res.Skipped = append(t.res.Skipped, Item{Pos: d.Pos, Directive: name, Text: d.String(), Reason: strings.ReplaceAll(fmt.Sprintf(reason, args...), "\n", "; ")})
}

func (t *translator) note(d corefile.Directive, name, reason string, args ...any) {
	t.res.Notes = append(t.res.Notes, Item{Pos: d.Pos, Directive: name, Text: d.String(), Reason: strings.ReplaceAll(fmt.Sprintf(reason, args...), "\n", "; ")})
}

// block is the server block a directive is in.
type block struct {
	zones []string // fully qualified, lower case
	main  bool     // the root zone's block
}

// file translates the server blocks: the root zone's block on the first
// port is the main one; blocks of other zones on that port are stub zones
// (their directives translate into the same settings); blocks on other
// ports or of other schemes are not translated.
func (t *translator) file(f *corefile.File) {
	c := &t.res.Config
	t.seen = map[string]string{}
	t.stubZones = map[string]bool{}
	// What a Corefile leaves out is off in CoreDNS: start from that.
	c.Cache.Disabled = true
	c.LoadBalance = false
	c.Reload = 0
	c.Lameduck = 0
	c.Errors.Consolidate = 0
	c.Forward.MaxConcurrent = 0 // forward's default: no limit
	c.ReverseFallthrough = false
	c.Listen = ":53"

	mainIdx := -1
	for i, s := range f.Servers {
		for _, k := range s.Keys {
			if k.Zone == "." && k.Scheme == "dns" && mainIdx < 0 {
				mainIdx = i
				t.mainPort = portOr53(k.Port)
			}
		}
	}
	if mainIdx < 0 && len(f.Servers) > 0 {
		t.mainPort = portOr53(f.Servers[0].Keys[0].Port)
	}
	if t.mainPort == "" {
		t.mainPort = "53"
	}
	c.Listen = ":" + t.mainPort
	order := []int{}
	if mainIdx >= 0 {
		order = append(order, mainIdx)
	}
	for i := range f.Servers {
		if i != mainIdx {
			order = append(order, i)
		}
	}
	for _, i := range order {
		s := f.Servers[i]
		var b block
		var other []string
		for _, k := range s.Keys {
			switch {
			case k.Scheme != "dns":
				other = append(other, k.Raw+" (dnsd serves plain DNS only)")
			case portOr53(k.Port) != t.mainPort:
				other = append(other, fmt.Sprintf("%s (dnsd listens on one port, %s)", k.Raw, t.mainPort))
			case i == mainIdx && k.Zone != ".":
				other = append(other, k.Raw+" (a zone beside the root zone in its block)")
			default:
				b.zones = append(b.zones, k.Zone)
			}
		}
		b.main = i == mainIdx
		hdr := corefile.Directive{Name: "server", Args: []string{keysText(s.Keys)}, Pos: s.Pos}
		for _, o := range other {
			t.skip(hdr, "server", "server block key %s is not translated", o)
		}
		if len(b.zones) == 0 {
			for _, d := range s.Directives {
				t.skip(d, d.Name, "in a server block that is not translated")
			}
			continue
		}
		for _, d := range s.Directives {
			t.directive(b, d)
		}
	}
}

func keysText(ks []corefile.Key) string {
	var s []string
	for _, k := range ks {
		s = append(s, k.Raw)
	}
	return strings.Join(s, " ")
}

func portOr53(p string) string {
	if p == "" {
		return "53"
	}
	return p
}

// directive translates one directive of a block; a translation that leaves
// the configuration invalid (a value outside dnsd's range, a name that is
// no domain name) is undone and reported instead.
func (t *translator) directive(b block, d corefile.Directive) {
	t.guard(d, func() { t.translate(b, d) })
}

// guard runs translate (of d) and undoes it, reporting d, when it leaves
// the configuration invalid.
func (t *translator) guard(d corefile.Directive, translate func()) {
	before := copyConfig(t.res.Config)
	nt, nn, ns := len(t.res.Translated), len(t.res.Notes), len(t.res.Skipped)
	translate()
	if err := t.res.Config.Validate(); err != nil {
		t.res.Config = before
		t.res.Translated, t.res.Notes, t.res.Skipped = t.res.Translated[:nt], t.res.Notes[:nn], t.res.Skipped[:ns]
		t.skip(d, d.Name, "not valid in dnsd: %v", err)
	}
}

// copyConfig is a deep copy of c.
func copyConfig(c daemon.Config) daemon.Config {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // a Config always marshals
	}
	var out daemon.Config
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// sharedDirectives translate the directives that are one setting for every
// zone in dnsd (see shared), by name.
var sharedDirectives = map[string]func(*translator, corefile.Directive){
	"cache":       (*translator).cache,
	"log":         (*translator).log,
	"errors":      (*translator).errors,
	"health":      (*translator).health,
	"ready":       (*translator).ready,
	"prometheus":  (*translator).prometheus,
	"loop":        (*translator).loop,
	"reload":      (*translator).reload,
	"loadbalance": (*translator).loadbalance,
	"bind":        (*translator).bind,
}

// translate translates one directive of a block.
func (t *translator) translate(b block, d corefile.Directive) {
	if tr, ok := sharedDirectives[d.Name]; ok {
		if t.shared(b, d) {
			tr(t, d)
		}
		return
	}
	switch d.Name {
	case "kubernetes":
		t.kubernetes(b, d)
	case "forward":
		t.forward(b, d)
	case "hosts":
		t.hosts(b, d)
	case "rewrite":
		t.rewrite(b, d)
	case "template":
		t.template(b, d)
	case "autopath":
		t.autopath(b, d)
	default:
		t.skip(d, d.Name, "dnsd has no %s", d.Name)
	}
}

// text is a directive with its block, for comparing two of them.
func text(d corefile.Directive) string {
	var s strings.Builder
	s.WriteString(d.String())
	for _, x := range d.Block {
		s.WriteString(" {" + text(x) + "}")
	}
	return s.String()
}

// shared handles a directive that is one setting for every zone in dnsd:
// the first one met (the main block's first) is translated; the same one in
// another block is translated with it; a different one is skipped. It
// reports whether d is to be translated now.
func (t *translator) shared(b block, d corefile.Directive) bool {
	prev, seen := t.seen[d.Name]
	if !seen {
		t.seen[d.Name] = text(d)
		if !b.main && d.Name != "cache" && d.Name != "errors" && d.Name != "loop" && d.Name != "bind" {
			// In CoreDNS it applies to this zone only; in dnsd to all.
			t.note(d, d.Name, "applies to every zone in dnsd, not only to %s", strings.Join(b.zones, " "))
		}
		return true
	}
	if prev == text(d) {
		t.ok(d, d.Name)
		return false
	}
	t.skip(d, d.Name, "dnsd has one %s setting for every zone; the first one (%s) is translated, this one differs", d.Name, prev)
	return false
}

// coreDNSKubernetesTTL is the kubernetes plugin's TTL when its block has
// no ttl (dnsd's default is the stock Corefile's 30).
const coreDNSKubernetesTTL = 5

// kubernetes: zones, pods, ttl, fallthrough, kubeconfig.
func (t *translator) kubernetes(b block, d corefile.Directive) {
	c := &t.res.Config
	if t.sawKubernetes {
		t.skip(d, "kubernetes", "a second kubernetes directive: dnsd serves one set of cluster zones")
		return
	}
	t.sawKubernetes = true
	zones := fqdns(d.Args)
	if len(zones) == 0 {
		zones = b.zones
	}
	var cz []string
	var rev []string
	for _, z := range zones {
		if isSubDomain("in-addr.arpa.", z) || isSubDomain("ip6.arpa.", z) {
			rev = append(rev, z)
			continue
		}
		if z == "." {
			t.skip(d, "kubernetes", "the root zone as a cluster zone")
			continue
		}
		cz = append(cz, strings.TrimSuffix(z, "."))
	}
	if len(cz) == 0 {
		t.skip(d, "kubernetes", "no cluster zone")
		return
	}
	c.Zones = cz
	c.TTL = coreDNSKubernetesTTL // unless the block says otherwise
	if !slices.Equal(rev, []string{"in-addr.arpa.", "ip6.arpa."}) {
		t.note(d, "kubernetes", "dnsd answers the reverse names of cluster IPs in in-addr.arpa and ip6.arpa whatever reverse zones are listed (here: %s)", strings.Join(rev, " "))
	}
	t.ok(d, "kubernetes")
	for _, o := range d.Block {
		switch o.Name {
		case "pods":
			if len(o.Args) != 1 {
				t.skip(o, "kubernetes.pods", "want one of disabled, insecure, verified")
				continue
			}
			p := cluster.PodMode(o.Args[0])
			if p != cluster.PodsDisabled && p != cluster.PodsInsecure && p != cluster.PodsVerified {
				t.skip(o, "kubernetes.pods", "want one of disabled, insecure, verified")
				continue
			}
			c.Pods = p
		case "ttl":
			n, err := strconv.ParseUint(arg(o, 0), 10, 32)
			if len(o.Args) != 1 || err != nil || n > cluster.MaxTTL {
				t.skip(o, "kubernetes.ttl", "want one number of seconds, 0 to %d", cluster.MaxTTL)
				continue
			}
			c.TTL = uint32(n)
		case "fallthrough":
			fz := fqdns(o.Args)
			var inCluster []string
			for _, z := range fz {
				if !isSubDomain("in-addr.arpa.", z) && !isSubDomain("ip6.arpa.", z) {
					inCluster = append(inCluster, z)
				}
			}
			c.ReverseFallthrough = true
			if len(fz) == 0 || len(inCluster) > 0 {
				t.skip(o, "kubernetes.fallthrough", "names in the cluster zones are never handed on by dnsd (its NXDOMAIN there is final); only the reverse zones fall through")
			}
		case "kubeconfig":
			if len(o.Args) < 1 || len(o.Args) > 2 {
				t.skip(o, "kubernetes.kubeconfig", "want a kubeconfig path and an optional context")
				continue
			}
			c.Source.Kubeconfig = o.Args[0]
			if len(o.Args) == 2 {
				t.skip(o, "kubernetes.kubeconfig", "dnsd uses the kubeconfig's current context; context %s is not translated", o.Args[1])
			}
		default:
			t.skip(o, "kubernetes."+o.Name, "dnsd's cluster handler has no %s", o.Name)
		}
	}
}

func arg(d corefile.Directive, i int) string {
	if i < len(d.Args) {
		return d.Args[i]
	}
	return ""
}

func fqdns(names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, fqdn(strings.ToLower(n)))
	}
	return out
}

// forward: upstreams, stub zones, options.
func (t *translator) forward(b block, d corefile.Directive) {
	c := &t.res.Config
	if len(d.Args) < 2 {
		t.skip(d, "forward", "want FROM TO...")
		return
	}
	from := fqdns(d.Args[:1])[0]
	var zone string
	switch {
	case b.main:
		zone = from
	case from == ".":
		zone = b.zones[0]
	default:
		zone = from
		if !isSubDomain(b.zones[0], from) {
			t.skip(d, "forward", "FROM %s is outside its server block's zone %s", from, b.zones[0])
			return
		}
	}
	if !b.main && len(b.zones) > 1 {
		t.skip(d, "forward", "only the first zone of a block with several (%s) is translated as a stub", strings.Join(b.zones, " "))
	}
	var ups []string
	resolv, tlsUps := "", false
	for _, to := range d.Args[1:] {
		if strings.HasPrefix(to, "/") || strings.HasSuffix(to, "resolv.conf") {
			resolv = to
			continue
		}
		if strings.HasPrefix(to, "tls://") {
			if _, err := forward.ParseUpstream(to); err != nil {
				t.skip(d, "forward", "upstream %s: %v", to, err)
				return
			}
			if !tlsTransport() {
				t.skip(d, "forward", "upstream %s: dnsd's forwarder does not speak DNS over TLS yet", to)
				return
			}
			ups = append(ups, to)
			tlsUps = true
			continue
		}
		if _, err := forward.ParseUpstream(to); err != nil {
			t.skip(d, "forward", "upstream %s: %v", to, err)
			return
		}
		ups = append(ups, strings.TrimPrefix(to, "dns://"))
	}
	if resolv != "" && (len(d.Args) != 2 || zone != ".") {
		t.skip(d, "forward", "a resolv.conf (%s) is translated only as the only upstream of the root zone; dnsd's stubs take addresses", resolv)
		return
	}
	switch {
	case zone == "." && (len(c.Forward.Upstreams) > 0 || c.Forward.ResolvConf != ""):
		t.skip(d, "forward", "a second forward of the root zone")
		return
	case zone == "." && resolv != "":
		c.Forward.ResolvConf = resolv
	case zone == ".":
		c.Forward.Upstreams = ups
	default:
		if t.stubZones[zone] {
			t.skip(d, "forward", "a second forward for %s", zone)
			return
		}
		t.stubZones[zone] = true
		c.Forward.Stubs = append(c.Forward.Stubs, forward.Stub{Zone: strings.TrimSuffix(zone, "."), Upstreams: ups})
	}
	t.ok(d, "forward")
	// The TLS settings are per zone: the forward block's for the root
	// zone, the stub's for a stub.
	tlsName, tlsCA := &c.Forward.TLSServerName, &c.Forward.TLSCA
	if zone != "." {
		st := &c.Forward.Stubs[len(c.Forward.Stubs)-1]
		tlsName, tlsCA = &st.TLSServerName, &st.TLSCA
	}
	opts := map[string]string{"policy": "random", "force_tcp": "false", "max_concurrent": "0", "expire": "10s", "max_fails": "2", "health_check": "0.5s"}
	for _, o := range d.Block {
		if _, ok := opts[o.Name]; ok {
			opts[o.Name] = strings.Join(o.Args, " ")
			if o.Name == "force_tcp" {
				opts[o.Name] = "true"
			}
			continue
		}
		switch o.Name {
		case "except":
			t.skip(o, "forward.except", "dnsd forwards every name outside the cluster zones and static records; it has no list of names never forwarded")
		case "prefer_udp":
			t.skip(o, "forward.prefer_udp", "dnsd has no prefer_udp")
		case "tls_servername":
			if !tlsUps || len(o.Args) != 1 {
				t.skip(o, "forward.tls_servername", "want one name, for tls:// upstreams")
				continue
			}
			*tlsName = o.Args[0]
		case "tls":
			switch {
			case len(o.Args) == 0 && tlsUps:
				// The system's CAs: dnsd's default.
			case len(o.Args) == 1 && tlsUps:
				*tlsCA = o.Args[0]
			case len(o.Args) > 1:
				t.skip(o, "forward.tls", "dnsd's forwarder has no client certificates (tls CERT KEY [CA]); tls CA is translated")
			default:
				t.skip(o, "forward.tls", "tls without a tls:// upstream")
			}
		default:
			t.skip(o, "forward."+o.Name, "dnsd's forwarder has no %s", o.Name)
		}
	}
	if t.forwardOpts != nil {
		for _, k := range slices.Sorted(maps.Keys(opts)) {
			if opts[k] != t.forwardOpts[k] {
				t.skip(d, "forward."+k, "dnsd's forward options apply to every zone: %s %s differs from the first forward's %s", k, opts[k], t.forwardOpts[k])
			}
		}
		return
	}
	t.forwardOpts = opts
	for _, o := range d.Block {
		switch o.Name {
		case "policy":
			p := forward.Policy(arg(o, 0))
			if p != forward.Random && p != forward.RoundRobin && p != forward.Sequential || len(o.Args) != 1 {
				t.skip(o, "forward.policy", "want random, round_robin or sequential")
				continue
			}
			c.Forward.Policy = p
		case "force_tcp":
			c.Forward.ForceTCP = true
		case "max_concurrent", "max_fails":
			n, err := strconv.Atoi(arg(o, 0))
			if err != nil || n < 0 || len(o.Args) != 1 {
				t.skip(o, "forward."+o.Name, "want a number")
				continue
			}
			if o.Name == "max_concurrent" {
				c.Forward.MaxConcurrent = n
			} else {
				c.Forward.MaxFails = n
			}
		case "expire", "health_check":
			dur, err := time.ParseDuration(arg(o, 0))
			if err != nil || dur <= 0 {
				t.skip(o, "forward."+o.Name, "want a positive duration")
				continue
			}
			if o.Name == "expire" {
				c.Forward.Expire = configfile.Duration(dur)
			} else {
				c.Forward.HealthCheck = configfile.Duration(dur)
				if len(o.Args) > 1 {
					t.skip(o, "forward.health_check", "dnsd's health check has no %s", strings.Join(o.Args[1:], " "))
				}
			}
		}
	}
}

// TLSTransport reports whether dnsd's forwarder can be built with a
// DNS-over-TLS upstream: the configuration has the shape (tls://IP[:port],
// tlsServerName) before the transport lands, and until then such forwards
// are reported as not translated rather than given to a dnsd that refuses
// them at start.
func TLSTransport() bool { return tlsTransport() }

// tlsTransport is TLSTransport's check (tests replace it).
var tlsTransport = func() bool {
	c := forward.Defaults()
	c.Upstreams = []string{"tls://127.0.0.1"}
	c.TLSServerName = "dns.example"
	f, err := forward.New(c, forward.Deps{})
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// cache [TTL] [ZONES] { success, denial, prefetch, serve_stale, servfail }.
func (t *translator) cache(d corefile.Directive) {
	c := &t.res.Config.Cache
	*c = cache.Defaults()
	args := d.Args
	if len(args) > 0 {
		if n, err := strconv.Atoi(args[0]); err == nil {
			if n < 0 {
				t.skip(d, "cache", "negative TTL")
				return
			}
			c.SuccessTTL = configfile.Duration(time.Duration(n) * time.Second)
			c.DenialTTL = c.SuccessTTL
			if c.MinTTL > c.SuccessTTL {
				c.MinTTL = c.SuccessTTL
			}
			args = args[1:]
		}
	}
	if z := fqdns(args); len(z) > 0 && !slices.Equal(z, []string{"."}) {
		t.skip(d, "cache", "dnsd caches every forwarded name; caching only %s is not translated", strings.Join(z, " "))
		return
	}
	t.ok(d, "cache")
	if !slices.ContainsFunc(d.Block, func(o corefile.Directive) bool { return o.Name == "disable" }) {
		t.note(d, "cache", "CoreDNS's cache also holds cluster answers; dnsd answers cluster names from its store (always current) and caches forwarded answers only")
	}
	var capacities, minTTLs []int
	for _, o := range d.Block {
		switch o.Name {
		case "success", "denial":
			n, err := strconv.Atoi(arg(o, 0))
			if err != nil || len(o.Args) < 1 || len(o.Args) > 3 {
				t.skip(o, "cache."+o.Name, "want CAPACITY [TTL [MINTTL]]")
				continue
			}
			capacities = append(capacities, n)
			if len(o.Args) >= 2 {
				ttl, err := strconv.Atoi(o.Args[1])
				if err != nil || ttl < 0 {
					t.skip(o, "cache."+o.Name, "TTL %q is not a number of seconds", o.Args[1])
					continue
				}
				if o.Name == "success" {
					c.SuccessTTL = configfile.Duration(time.Duration(ttl) * time.Second)
				} else {
					c.DenialTTL = configfile.Duration(time.Duration(ttl) * time.Second)
				}
			}
			if len(o.Args) == 3 {
				m, err := strconv.Atoi(o.Args[2])
				if err != nil || m < 0 {
					t.skip(o, "cache."+o.Name, "MINTTL %q is not a number of seconds", o.Args[2])
					continue
				}
				minTTLs = append(minTTLs, m)
			}
		case "prefetch":
			n, err := strconv.Atoi(arg(o, 0))
			if err != nil || n < 1 || len(o.Args) > 3 {
				t.skip(o, "cache.prefetch", "want AMOUNT [DURATION [PERCENTAGE%%]]")
				continue
			}
			c.Prefetch = n
			if len(o.Args) >= 2 {
				dur, err := time.ParseDuration(o.Args[1])
				if err != nil {
					t.skip(o, "cache.prefetch", "duration %q: %v", o.Args[1], err)
					continue
				}
				c.PrefetchWindow = configfile.Duration(dur)
			}
			if len(o.Args) == 3 {
				p, err := strconv.Atoi(strings.TrimSuffix(o.Args[2], "%"))
				if err != nil || p < 10 || p > 90 {
					t.skip(o, "cache.prefetch", "percentage %q: dnsd takes 10%% to 90%%", o.Args[2])
					continue
				}
				c.PrefetchPercent = p
			}
		case "serve_stale":
			dur := time.Hour
			if len(o.Args) >= 1 {
				var err error
				if dur, err = time.ParseDuration(o.Args[0]); err != nil {
					t.skip(o, "cache.serve_stale", "duration %q: %v", o.Args[0], err)
					continue
				}
			}
			if len(o.Args) < 2 || o.Args[1] != "verify" {
				t.skip(o, "cache.serve_stale", "dnsd serves a stale answer only when the upstream fails (CoreDNS's verify); CoreDNS's default, immediate, answers stale first and refreshes after")
				continue
			}
			c.ServeStale = configfile.Duration(dur)
		case "servfail":
			dur, err := time.ParseDuration(arg(o, 0))
			if err != nil || dur < 0 || dur > cache.MaxServfailTTL {
				t.skip(o, "cache.servfail", "want a duration up to %s", cache.MaxServfailTTL)
				continue
			}
			c.ServfailTTL = configfile.Duration(dur)
		case "disable":
			// dnsd never caches cluster answers: disabling the cache for the
			// cluster zones is what it does.
			if len(o.Args) < 2 || (o.Args[0] != "success" && o.Args[0] != "denial") || t.outsideCluster(fqdns(o.Args[1:])) || !t.allCluster(fqdns(o.Args[1:])) {
				t.skip(o, "cache.disable", "dnsd caches every forwarded answer; only disabling the cache for the cluster zones (which dnsd never caches) is translated")
			}
		default:
			t.skip(o, "cache."+o.Name, "dnsd's cache has no %s", o.Name)
		}
	}
	if len(capacities) > 0 {
		n := slices.Max(capacities)
		if n < cache.MinCapacity {
			n = cache.MinCapacity
		}
		c.Capacity = n
		if slices.Min(capacities) != slices.Max(capacities) || n != slices.Max(capacities) {
			t.note(d, "cache", "dnsd sizes the success and denial caches alike: %d entries each", n)
		}
	}
	if len(minTTLs) > 0 {
		c.MinTTL = configfile.Duration(time.Duration(slices.Min(minTTLs)) * time.Second)
		if slices.Min(minTTLs) != slices.Max(minTTLs) {
			t.note(d, "cache", "dnsd has one minimum TTL for success and denial: the smaller, %s", c.MinTTL)
		}
	}
	if c.MinTTL > c.SuccessTTL || c.MinTTL > c.DenialTTL {
		c.MinTTL = min(c.SuccessTTL, c.DenialTTL)
	}
	c.Disabled = false
}

// hosts [FILE [ZONES]] { entries, ttl, no_reverse, reload, fallthrough }.
func (t *translator) hosts(b block, d corefile.Directive) {
	blk := static.Block{HostsFile: "/etc/hosts"}
	if len(d.Args) > 0 {
		blk.HostsFile = d.Args[0]
	}
	zones := b.zones
	if len(d.Args) > 1 {
		zones = fqdns(d.Args[1:])
	}
	if !slices.Equal(zones, []string{"."}) {
		blk.Zones = zones
	}
	for _, o := range d.Block {
		if _, err := netip.ParseAddr(strings.SplitN(o.Name, "%", 2)[0]); err == nil {
			blk.Entries = append(blk.Entries, o.String())
			continue
		}
		switch o.Name {
		case "ttl":
			n, err := strconv.ParseUint(arg(o, 0), 10, 32)
			if err != nil || len(o.Args) != 1 {
				t.skip(o, "hosts.ttl", "want a number of seconds")
				continue
			}
			v := uint32(n)
			blk.TTL = &v
		case "no_reverse":
			blk.NoReverse = true
		case "reload":
			dur, err := time.ParseDuration(arg(o, 0))
			if err != nil || len(o.Args) != 1 {
				t.skip(o, "hosts.reload", "want a duration")
				continue
			}
			v := configfile.Duration(dur)
			blk.Reload = &v
		case "fallthrough":
			fz := fqdns(o.Args)
			blk.Fallthrough = true
			if len(fz) > 0 && !slices.Equal(fz, zones) {
				t.skip(o, "hosts.fallthrough", "dnsd's static block falls through for all its zones (%s), not for %s only", strings.Join(zones, " "), strings.Join(fz, " "))
			}
		default:
			t.skip(o, "hosts."+o.Name, "dnsd's static records have no %s", o.Name)
		}
	}
	if err := (static.Config{blk}).Validate(); err != nil {
		t.skip(d, "hosts", "%v", err)
		return
	}
	t.res.Config.Static = append(t.res.Config.Static, blk)
	t.ok(d, "hosts")
	if !blk.Fallthrough && !t.outsideCluster(zones) {
		t.note(d, "hosts", "CoreDNS runs hosts before kubernetes, so without fallthrough its NXDOMAIN covered the cluster names too; dnsd answers cluster names first")
	}
}

// allCluster reports whether every zone is a cluster zone.
func (t *translator) allCluster(zones []string) bool {
	for _, z := range zones {
		if !slices.ContainsFunc(t.res.Config.Zones, func(cz string) bool { return fqdn(strings.ToLower(cz)) == z }) {
			return false
		}
	}
	return true
}

// outsideCluster reports whether no zone contains a cluster zone.
func (t *translator) outsideCluster(zones []string) bool {
	for _, z := range zones {
		for _, cz := range t.res.Config.Zones {
			if isSubDomain(z, fqdn(cz)) {
				return false
			}
		}
	}
	return true
}

// rewrite [stop] name [exact|suffix|regex] FROM TO [answer auto|answer name ...].
func (t *translator) rewrite(b block, d corefile.Directive) {
	a := d.Args
	if len(a) > 0 && (a[0] == "stop" || a[0] == "continue") {
		if a[0] == "continue" {
			t.skip(d, "rewrite", "dnsd applies the first rule that matches (stop); continue is not translated")
			return
		}
		a = a[1:]
	}
	if len(a) == 0 || a[0] != "name" {
		t.skip(d, "rewrite", "only rewrite name is translated")
		return
	}
	a = a[1:]
	match := "exact"
	if len(a) > 0 {
		switch a[0] {
		case "exact", "suffix", "regex":
			match, a = a[0], a[1:]
		case "prefix", "substring":
			t.skip(d, "rewrite", "dnsd's rewrite has exact, suffix and regex rules; %s is not translated", a[0])
			return
		}
	}
	if len(a) < 2 {
		t.skip(d, "rewrite", "want FROM TO")
		return
	}
	r := rewrite.Rule{Match: match, From: a[0], To: a[1]}
	if match == "suffix" {
		// CoreDNS replaces a string suffix; dnsd a suffix of whole labels.
		// A suffix written with its leading dot on both sides is the same.
		f, to := strings.TrimPrefix(r.From, "."), strings.TrimPrefix(r.To, ".")
		if f == r.From || to == r.To {
			t.note(d, "rewrite", "dnsd matches the suffix %s at a label boundary only (CoreDNS also matched it inside a label)", f)
		}
		r.From, r.To = f, to
	}
	rest := a[2:]
	switch {
	case len(rest) == 0:
	case len(rest) == 2 && rest[0] == "answer" && rest[1] == "auto":
	case len(rest) == 4 && rest[0] == "answer" && rest[1] == "name":
		// dnsd always answers with the asked name: an answer rule that
		// reverts the rewrite is what it does.
	default:
		t.skip(d, "rewrite", "%s is not translated (dnsd answers with the asked name, as answer auto)", strings.Join(rest, " "))
		return
	}
	for _, o := range d.Block {
		if o.Name != "answer" {
			t.skip(o, "rewrite."+o.Name, "not translated")
			return
		}
	}
	if match == "regex" {
		r.To = regexp.MustCompile(`\{(\d+)\}`).ReplaceAllString(r.To, `$${$1}`)
		if !b.main {
			t.skip(d, "rewrite", "a regex rule in the block of %s: dnsd's rules apply to every zone", strings.Join(b.zones, " "))
			return
		}
	} else if !b.main && !inAny(fqdn(strings.ToLower(r.From)), b.zones) {
		t.skip(d, "rewrite", "rule for %s outside its block's zones %s", r.From, strings.Join(b.zones, " "))
		return
	}
	// CoreDNS rewrites names of the cluster zones too; dnsd only when a
	// rule says so.
	for _, cz := range t.res.Config.Zones {
		if match == "regex" && strings.Contains(strings.ReplaceAll(r.From, `\.`, "."), cz) ||
			match != "regex" && isSubDomain(fqdn(cz), fqdn(strings.ToLower(r.From))) {
			r.Cluster = true
		}
	}
	if err := (rewrite.Config{r}).Validate(); err != nil {
		t.skip(d, "rewrite", "%v", err)
		return
	}
	t.res.Config.Rewrite = append(t.res.Config.Rewrite, r)
	t.ok(d, "rewrite")
}

func inAny(name string, zones []string) bool {
	for _, z := range zones {
		if isSubDomain(z, name) {
			return true
		}
	}
	return false
}

// log [NAMES] [FORMAT] { class ... }.
func (t *translator) log(d corefile.Directive) {
	q := &t.res.Config.QueryLog
	if len(d.Args) > 1 || len(d.Args) == 1 && d.Args[0] != "." {
		t.skip(d, "log", "dnsd logs every name (its filters are rcode classes, client namespaces and sampling); names and formats are not translated")
		return
	}
	q.Enabled = true
	t.ok(d, "log")
	t.note(d, "log", "dnsd logs one JSON line per query (with the client pod), not CoreDNS's common log format")
	for _, o := range d.Block {
		if o.Name != "class" {
			t.skip(o, "log."+o.Name, "dnsd's query log has no %s", o.Name)
			continue
		}
		var cls []string
		for _, c := range o.Args {
			switch c {
			case querylog.ClassAll, querylog.ClassSuccess, querylog.ClassDenial, querylog.ClassError:
				cls = append(cls, c)
			default:
				t.skip(o, "log.class", "class %s: want all, success, denial or error", c)
			}
		}
		if len(cls) > 0 {
			q.Classes = cls
		}
	}
}

// errors { consolidate DURATION REGEXP }.
func (t *translator) errors(d corefile.Directive) {
	e := &t.res.Config.Errors
	if len(d.Args) > 0 {
		t.skip(d, "errors", "errors to a file is not translated (dnsd logs errors to its log)")
		return
	}
	e.Enabled = true
	t.ok(d, "errors")
	for _, o := range d.Block {
		if o.Name != "consolidate" || len(o.Args) < 2 {
			t.skip(o, "errors."+o.Name, "dnsd's errors log has consolidate DURATION REGEXP only")
			continue
		}
		dur, err := time.ParseDuration(o.Args[0])
		if err != nil {
			t.skip(o, "errors.consolidate", "duration %q: %v", o.Args[0], err)
			continue
		}
		if e.Consolidate != 0 && e.Consolidate.D() != dur {
			t.skip(o, "errors.consolidate", "dnsd has one consolidation window; the first (%s) is kept", e.Consolidate)
			continue
		}
		e.Consolidate = configfile.Duration(dur)
		e.Patterns = append(e.Patterns, o.Args[1])
		if len(o.Args) > 2 {
			t.note(o, "errors.consolidate", "dnsd logs consolidated errors at error level; the level %s is not kept", o.Args[2])
		}
	}
}

// listenArg is d's ADDRESS argument, CoreDNS's ":port" or "host:port", as
// a listen address, or def when d has none; false (d skipped) when it is
// not an address.
func (t *translator) listenArg(d corefile.Directive, def string) (string, bool) {
	if len(d.Args) == 0 {
		return def, true
	}
	if _, _, err := net.SplitHostPort(d.Args[0]); err != nil {
		t.skip(d, d.Name, "address: %v", err)
		return "", false
	}
	return d.Args[0], true
}

// health [ADDRESS] { lameduck DURATION }.
func (t *translator) health(d corefile.Directive) {
	c := &t.res.Config
	addr, ok := t.listenArg(d, ":8080")
	if !ok {
		return
	}
	t.sawHealth = true
	c.HealthListen = addr
	t.ok(d, "health")
	for _, o := range d.Block {
		if o.Name != "lameduck" || len(o.Args) != 1 {
			t.skip(o, "health."+o.Name, "dnsd's health has lameduck DURATION only")
			continue
		}
		dur, err := time.ParseDuration(o.Args[0])
		if err != nil || dur < 0 {
			t.skip(o, "health.lameduck", "want a duration")
			continue
		}
		c.Lameduck = configfile.Duration(dur)
	}
	if t.sawReady && t.readyAddr != addr {
		t.note(d, "ready", "dnsd serves /ready on healthListen (%s), not on %s: point readiness probes there", addr, t.readyAddr)
	}
}

// ready [ADDRESS].
func (t *translator) ready(d corefile.Directive) {
	addr, ok := t.listenArg(d, ":8181")
	if !ok {
		return
	}
	t.sawReady, t.readyAddr = true, addr
	t.ok(d, "ready")
	if !t.sawHealth {
		// Until a health directive says otherwise /ready (and /health)
		// are served where ready was.
		t.res.Config.HealthListen = addr
		return
	}
	if t.res.Config.HealthListen != addr {
		t.note(d, "ready", "dnsd serves /ready on healthListen (%s), not on %s: point readiness probes there", t.res.Config.HealthListen, addr)
	}
}

// prometheus [ADDRESS].
func (t *translator) prometheus(d corefile.Directive) {
	addr, ok := t.listenArg(d, ":9153")
	if !ok {
		return
	}
	t.res.Config.MetricsListen = addr
	t.ok(d, "prometheus")
	t.note(d, "prometheus", "dnsd's metrics are named poddns_* (labels zone, type, rcode, proto as CoreDNS's); dashboards need their metric names changed")
}

// loop, without arguments.
func (t *translator) loop(d corefile.Directive) {
	if len(d.Args) > 0 || len(d.Block) > 0 {
		t.skip(d, "loop", "loop takes no arguments")
		return
	}
	t.ok(d, "loop")
}

// reload [INTERVAL [JITTER]].
func (t *translator) reload(d corefile.Directive) {
	every := 30 * time.Second
	if len(d.Args) > 0 {
		var err error
		if every, err = time.ParseDuration(d.Args[0]); err != nil || every <= 0 {
			t.skip(d, "reload", "want a positive interval")
			return
		}
	}
	t.res.Config.Reload = configfile.Duration(every)
	t.ok(d, "reload")
	if len(d.Args) > 1 {
		t.note(d, "reload", "dnsd checks every interval exactly; the jitter %s is not kept", d.Args[1])
	}
}

// loadbalance [round_robin].
func (t *translator) loadbalance(d corefile.Directive) {
	if len(d.Args) > 1 || len(d.Args) == 1 && d.Args[0] != "round_robin" || len(d.Block) > 0 {
		t.skip(d, "loadbalance", "dnsd's loadbalance shuffles A/AAAA records (round_robin) only")
		return
	}
	t.res.Config.LoadBalance = true
	t.ok(d, "loadbalance")
}

// template ANY|IN AAAA [ZONES] { rcode NOERROR }: the AAAA hack.
func (t *translator) template(b block, d corefile.Directive) {
	if len(d.Args) < 2 || !(d.Args[0] == "IN" || d.Args[0] == "ANY") || d.Args[1] != "AAAA" {
		t.skip(d, "template", "only the AAAA hack (template IN|ANY AAAA . { rcode NOERROR }) is translated")
		return
	}
	zones := b.zones
	if len(d.Args) > 2 {
		zones = fqdns(d.Args[2:])
	}
	if !slices.Equal(zones, []string{"."}) {
		t.skip(d, "template", "the AAAA filter covers every name outside the cluster; for %s only it is not translated", strings.Join(zones, " "))
		return
	}
	for _, o := range d.Block {
		if !(o.Name == "rcode" && len(o.Args) == 1 && o.Args[0] == "NOERROR") {
			t.skip(d, "template", "only a template with rcode NOERROR alone is translated (here: %s)", o.String())
			return
		}
	}
	t.res.Config.AAAA.Filter = aaaa.ModeAll
	t.ok(d, "template")
	t.note(d, "template", "dnsd answers AAAA NODATA for names outside the cluster only: cluster names (dual-stack Services) keep their AAAA records, which the template hid")
}

// autopath @kubernetes: search completion, with a node profile.
func (t *translator) autopath(b block, d corefile.Directive) {
	if t.in.NodeProfile == "" {
		t.skip(d, "autopath", "dnsd completes search paths from each pod's real search list, which needs the node profile (cluster domain, node resolv.conf): give --node-profile FILE")
		return
	}
	if len(d.Args) != 1 || d.Args[0] != "@kubernetes" {
		t.skip(d, "autopath", "only autopath @kubernetes is translated")
		return
	}
	on := true
	t.res.Config.Completion.Enabled = &on
	t.res.Config.Completion.NodeProfile = t.in.NodeProfile
	t.ok(d, "autopath")
}

// bind ADDRESS: the listen address.
func (t *translator) bind(d corefile.Directive) {
	if len(d.Args) != 1 || len(d.Block) > 0 {
		t.skip(d, "bind", "dnsd listens on one address")
		return
	}
	if _, err := netip.ParseAddr(d.Args[0]); err != nil {
		t.skip(d, "bind", "interface names are not translated (want an IP)")
		return
	}
	t.res.Config.Listen = net.JoinHostPort(d.Args[0], t.mainPort)
	t.ok(d, "bind")
}

// kubeDNS adds a kube-dns ConfigMap's stubDomains and upstreamNameservers,
// as kubeadm translated them: stubs, and upstreams in place of the
// Corefile's root-zone forward.
func (t *translator) kubeDNS(k *kubeDNS) {
	c := &t.res.Config
	item := func(key, text string) corefile.Directive {
		return corefile.Directive{Name: key, Args: []string{text}, Pos: corefile.Pos{File: k.path + ": data." + key}}
	}
	for _, zone := range slices.Sorted(maps.Keys(k.stubs)) {
		d := item("stubDomains", zone+" "+strings.Join(k.stubs[zone], " "))
		z := fqdns([]string{zone})[0]
		if t.stubZones[z] {
			t.skip(d, "stubDomains", "the Corefile already forwards %s", z)
			continue
		}
		var ups []string
		bad := false
		for _, a := range k.stubs[zone] {
			if _, err := forward.ParseUpstream(a); err != nil {
				t.skip(d, "stubDomains", "%v", err)
				bad = true
				break
			}
			ups = append(ups, a)
		}
		if bad || len(ups) == 0 {
			continue
		}
		t.guard(d, func() {
			t.stubZones[z] = true
			c.Forward.Stubs = append(c.Forward.Stubs, forward.Stub{Zone: strings.TrimSuffix(z, "."), Upstreams: ups})
			t.ok(d, "stubDomains")
		})
	}
	if len(k.upstreams) > 0 {
		d := item("upstreamNameservers", strings.Join(k.upstreams, " "))
		for _, a := range k.upstreams {
			if _, err := forward.ParseUpstream(a); err != nil {
				t.skip(d, "upstreamNameservers", "%v", err)
				return
			}
		}
		c.Forward.Upstreams = append([]string(nil), k.upstreams...)
		c.Forward.ResolvConf = ""
		t.ok(d, "upstreamNameservers")
		// The Corefile's forward of the root zone is replaced, as
		// kubeadm's translation replaced it.
		var kept []Item
		for _, it := range t.res.Translated {
			if it.Directive == "forward" && strings.HasPrefix(it.Text, "forward . ") && it.Pos.File != d.Pos.File {
				it.Reason = "replaced by the kube-dns ConfigMap's upstreamNameservers (as kubeadm's translation does)"
				t.res.Notes = append(t.res.Notes, it)
				continue
			}
			kept = append(kept, it)
		}
		t.res.Translated = kept
	}
	if strings.TrimSpace(k.federations) != "" {
		t.skip(item("federations", "..."), "federations", "kube-dns federations are not translated (CoreDNS dropped them too)")
	}
}

// finish checks what the whole input implies.
func (t *translator) finish() {
	if !t.sawKubernetes {
		t.res.Notes = append(t.res.Notes, Item{Pos: corefile.Pos{File: t.in.Corefile}, Directive: "kubernetes",
			Text: "(no kubernetes directive)", Reason: "dnsd always answers its cluster zones (cluster.local by default)"})
	}
}

// fqdn is name fully qualified (a trailing dot).
func fqdn(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}

// isSubDomain reports whether child is parent or below it; both are
// lower-case and fully qualified.
func isSubDomain(parent, child string) bool {
	return parent == "." || child == parent || strings.HasSuffix(child, "."+parent)
}

package main

import (
	"fmt"
	"math"

	"github.com/poddns/poddns/internal/benchresults"
	"github.com/poddns/poddns/pkg/serve/sizing"
)

// Colors per scenario (QPS and p99 plots) and per server (memory plot);
// CoreDNS lines are dashed.
var (
	scenarioColors = map[string]string{
		"cluster": "#1f77b4", "external-cached": "#2ca02c", "negative": "#ff7f0e", "search-walk": "#9467bd",
	}
	serverColors = map[string]string{
		"dnsd": "#1f77b4", "coredns": "#d62728", "coredns-autopath": "#ff7f0e",
	}
	plotScenarios = []string{"cluster", "external-cached", "negative", "search-walk"}
)

func dnsPlots(run *DNSRun) []PlotFile {
	var ticks []TickLabel
	for i, sc := range run.Scales {
		label := sc.Name
		if sc.Services != nil {
			label = fmt.Sprintf("%s (%s svc)", sc.Name, count(sc.Services))
		}
		ticks = append(ticks, TickLabel{At: float64(i), Label: label})
	}
	perScale := func(title, ylabel string, value func(*benchresults.DNSResult) *float64) Plot {
		p := Plot{Title: title, XLabel: "scale", YLabel: ylabel, XTickLabels: ticks, YFromZero: true}
		for _, server := range []string{"dnsd", "coredns"} {
			for _, scenario := range plotScenarios {
				s := Series{Name: server + " " + scenario, Color: scenarioColors[scenario], Dashed: server != "dnsd"}
				present := false
				for i := range run.Scales {
					r := run.Scales[i].Result(server, scenario)
					if r == nil {
						continue
					}
					present = true
					if v := value(r); v != nil {
						s.Points = append(s.Points, Point{float64(i), *v})
					}
				}
				if present {
					p.Series = append(p.Series, s)
				}
			}
		}
		return p
	}
	qps := perScale("QPS at saturation vs scale (dnsd solid, CoreDNS dashed)", "queries/s", func(r *benchresults.DNSResult) *float64 { return r.QPS })
	p99 := perScale("p99 latency at a fixed rate vs scale (dnsd solid, CoreDNS dashed)", "p99 ms", func(r *benchresults.DNSResult) *float64 { return r.P99 })

	mem := Plot{Title: "Memory vs objects (Pods + Services)", XLabel: "Pods + Services", YLabel: "RSS MB", YFromZero: true}
	maxX := 0.0
	for _, server := range []string{"dnsd", "coredns", "coredns-autopath"} {
		s := Series{Name: server, Color: serverColors[server]}
		for i := range run.Scales {
			sc := &run.Scales[i]
			o, v := sc.Objects(), sc.RSS(server)
			if o != nil && v != nil {
				s.Points = append(s.Points, Point{*o, *v})
				maxX = math.Max(maxX, *o)
			}
		}
		if len(s.Points) > 0 {
			mem.Series = append(mem.Series, s)
		}
	}
	// dnsd's peak across the API-server restart, and its sizing bound
	// (pkg/serve/sizing, from each scale's Pods and Services).
	peak := Series{Name: "dnsd peak, API restart", Color: serverColors["dnsd"], Dashed: true}
	bound := Series{Name: "dnsd sizing bound", Color: "#7f7f7f", Dashed: true}
	for i := range run.Scales {
		sc := &run.Scales[i]
		o := sc.Objects()
		if o == nil {
			continue
		}
		if r := sc.Result("dnsd", "cluster"); r != nil && r.PeakRSSRestart != nil {
			peak.Points = append(peak.Points, Point{*o, *r.PeakRSSRestart})
		}
		svcs := *sc.Services
		if sc.Headless != nil {
			svcs += *sc.Headless
		}
		bound.Points = append(bound.Points, Point{*o, sizing.BoundMB(sizing.Cluster{Pods: int(*sc.Pods), Services: int(svcs)})})
	}
	for _, s := range []Series{peak, bound} {
		if len(s.Points) > 0 {
			mem.Series = append(mem.Series, s)
		}
	}
	if maxX > 0 {
		x := maxX * 1.1
		mem.Series = append(mem.Series,
			Series{Name: "CoreDNS formula N/1000+54", Color: "#d62728", Dashed: true, NoMarkers: true,
				Points: []Point{{0, 54}, {x, x/1000 + 54}}},
			Series{Name: "autopath formula N/250+56", Color: "#ff7f0e", Dashed: true, NoMarkers: true,
				Points: []Point{{0, 56}, {x, x/250 + 56}}},
		)
	}
	return []PlotFile{
		{Name: "dns-qps.svg", SVG: qps.SVG()},
		{Name: "dns-p99.svg", SVG: p99.SVG()},
		{Name: "dns-memory.svg", SVG: mem.SVG()},
	}
}

// webhookPlot is p99 vs the number of policies, one line per rate, with the
// 5 ms goal.
func webhookPlot(run *benchresults.WebhookRun) PlotFile {
	p := Plot{Title: "Webhook p99 vs policies, per request rate", XLabel: "policies", YLabel: "p99 ms", YFromZero: true}
	var rates []float64
	for _, r := range run.Results {
		if r.Rate != nil && rank64(rates, *r.Rate) < 0 {
			rates = append(rates, *r.Rate)
		}
	}
	minX, maxX := math.Inf(1), math.Inf(-1)
	for _, rate := range rates {
		s := Series{Name: fmt.Sprintf("%s req/s", count(&rate))}
		for _, r := range run.Results {
			if r.Rate != nil && *r.Rate == rate && r.Policies != nil && r.P99 != nil {
				s.Points = append(s.Points, Point{*r.Policies, *r.P99})
				minX, maxX = math.Min(minX, *r.Policies), math.Max(maxX, *r.Policies)
			}
		}
		p.Series = append(p.Series, s)
	}
	if maxX >= minX {
		p.Series = append(p.Series, Series{Name: "goal: 5 ms", Color: "#7f7f7f", Dashed: true, NoMarkers: true,
			Points: []Point{{minX, goalWebhookP99}, {maxX, goalWebhookP99}}})
	}
	return PlotFile{Name: "webhook-p99.svg", SVG: p.SVG()}
}

func rank64(list []float64, v float64) int {
	for i, x := range list {
		if x == v {
			return i
		}
	}
	return -1
}

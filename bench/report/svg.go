package main

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// A small SVG line-plot writer: axes with "nice" ticks, labels, a legend,
// solid or dashed lines with point markers. Output depends only on the
// input (fixed number formatting, no maps), so plots are reproducible.

// Plot is one chart.
type Plot struct {
	Title, XLabel, YLabel string
	Series                []Series
	// XTickLabels, when set, label the x ticks at the given values instead
	// of numbers (e.g. scale names); only those ticks are drawn.
	XTickLabels []TickLabel
	// YFromZero starts the y axis at 0.
	YFromZero bool
}

// TickLabel is a labelled tick.
type TickLabel struct {
	At    float64
	Label string
}

// Series is one line of a Plot.
type Series struct {
	Name   string
	Color  string
	Dashed bool
	// NoMarkers draws the line without point markers (formula lines).
	NoMarkers bool
	Points    []Point
}

// Point is one (x, y).
type Point struct{ X, Y float64 }

const (
	svgWidth, svgHeight = 760, 420
	padLeft, padRight   = 70, 230
	padTop, padBottom   = 40, 55
)

// palette is used in order for series without a color.
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

// SVG renders p.
func (p *Plot) SVG() string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgWidth, svgHeight, svgWidth, svgHeight)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgWidth, svgHeight)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", padLeft, esc(p.Title))

	x0, x1, y0, y1, ok := p.bounds()
	plotW, plotH := float64(svgWidth-padLeft-padRight), float64(svgHeight-padTop-padBottom)
	left, top := float64(padLeft), float64(padTop)
	bottom := top + plotH
	if !ok {
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle" fill="#666">no data</text>`+"\n", num(left+plotW/2), num(top+plotH/2))
		b.WriteString("</svg>\n")
		return b.String()
	}
	xt := niceTicks(x0, x1, 6)
	yt := niceTicks(y0, y1, 6)
	if len(p.XTickLabels) == 0 {
		x0, x1 = xt[0], xt[len(xt)-1]
	}
	y0, y1 = yt[0], yt[len(yt)-1]
	sx := func(x float64) float64 { return left + (x-x0)/(x1-x0)*plotW }
	sy := func(y float64) float64 { return bottom - (y-y0)/(y1-y0)*plotH }

	// Grid and y ticks.
	for _, v := range yt {
		y := sy(v)
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e5e5e5"/>`+"\n", num(left), num(y), num(left+plotW), num(y))
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", num(left-6), num(y), tickText(v))
	}
	// X ticks.
	if len(p.XTickLabels) > 0 {
		for _, t := range p.XTickLabels {
			x := sx(t.At)
			fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333"/>`+"\n", num(x), num(bottom), num(x), num(bottom+5))
			fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle">%s</text>`+"\n", num(x), num(bottom+18), esc(t.Label))
		}
	} else {
		for _, v := range xt {
			x := sx(v)
			fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333"/>`+"\n", num(x), num(bottom), num(x), num(bottom+5))
			fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle">%s</text>`+"\n", num(x), num(bottom+18), tickText(v))
		}
	}
	// Axes and labels.
	fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333"/>`+"\n", num(left), num(bottom), num(left+plotW), num(bottom))
	fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333"/>`+"\n", num(left), num(top), num(left), num(bottom))
	fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="middle">%s</text>`+"\n", num(left+plotW/2), svgHeight-12, esc(p.XLabel))
	fmt.Fprintf(&b, `<text x="16" y="%s" text-anchor="middle" transform="rotate(-90 16 %s)">%s</text>`+"\n", num(top+plotH/2), num(top+plotH/2), esc(p.YLabel))

	// Series.
	for i, s := range p.Series {
		color := s.color(i)
		if len(s.Points) == 0 {
			continue
		}
		var pts []string
		for _, pt := range s.Points {
			pts = append(pts, num(sx(pt.X))+","+num(sy(pt.Y)))
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", color, dash, strings.Join(pts, " "))
		if !s.NoMarkers {
			for _, pt := range s.Points {
				fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3.5" fill="%s"/>`+"\n", num(sx(pt.X)), num(sy(pt.Y)), color)
			}
		}
	}

	// Legend, right of the plot.
	lx := left + plotW + 16
	for i, s := range p.Series {
		y := top + 8 + float64(i)*20
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2"%s/>`+"\n", num(lx), num(y), num(lx+24), num(y), s.color(i), dash)
		label := s.Name
		if len(s.Points) == 0 {
			label += " (no data)"
		}
		fmt.Fprintf(&b, `<text x="%s" y="%s" dominant-baseline="middle">%s</text>`+"\n", num(lx+30), num(y), esc(label))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func (s *Series) color(i int) string {
	if s.Color != "" {
		return s.Color
	}
	return palette[i%len(palette)]
}

// bounds are the data's ranges (with the x tick labels); ok is false without
// any point.
func (p *Plot) bounds() (x0, x1, y0, y1 float64, ok bool) {
	x0, y0 = math.Inf(1), math.Inf(1)
	x1, y1 = math.Inf(-1), math.Inf(-1)
	for _, s := range p.Series {
		for _, pt := range s.Points {
			ok = true
			x0, x1 = math.Min(x0, pt.X), math.Max(x1, pt.X)
			y0, y1 = math.Min(y0, pt.Y), math.Max(y1, pt.Y)
		}
	}
	for _, t := range p.XTickLabels {
		x0, x1 = math.Min(x0, t.At), math.Max(x1, t.At)
	}
	if !ok {
		return 0, 0, 0, 0, false
	}
	if p.YFromZero && y0 > 0 {
		y0 = 0
	}
	if len(p.XTickLabels) > 0 {
		// Categories: half a step of room on each side.
		pad := 0.5
		if x1 > x0 {
			pad = (x1 - x0) / float64(2*max(1, len(p.XTickLabels)-1))
		}
		x0, x1 = x0-pad, x1+pad
	}
	if x1 == x0 {
		x0, x1 = x0-1, x1+1
	}
	if y1 == y0 {
		y1 = y0 + 1
	}
	return x0, x1, y0, y1, true
}

// niceTicks returns ticks at a step of 1, 2 or 5 times a power of ten that
// cover [lo, hi] with about n intervals.
func niceTicks(lo, hi float64, n int) []float64 {
	span := hi - lo
	raw := span / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	start := math.Floor(lo/step) * step
	end := math.Ceil(hi/step) * step
	var out []float64
	for i := 0; ; i++ {
		v := start + float64(i)*step
		// Snap to the step's precision against float drift.
		v = math.Round(v/step) * step
		out = append(out, v)
		if v >= end-step/1e6 {
			break
		}
	}
	return out
}

// num formats a coordinate with at most one decimal.
func num(v float64) string {
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

// tickText formats a tick value: thousands as "10k", others plainly.
func tickText(v float64) string {
	if v != 0 && math.Abs(v) >= 1000 && math.Mod(v, 1000) == 0 {
		return strconv.FormatFloat(v/1000, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}

func esc(s string) string { return html.EscapeString(s) }

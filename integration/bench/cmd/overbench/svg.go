package main

import (
	"fmt"
	"math"
	"strings"
)

// point is one step on the figure: offered load as a multiple of the
// target's C, and goodput in 200s per second.
type point struct{ x, y float64 }

// curve is a target's line: its capacity step at 1x, then each overload
// step at the multiple sipp actually offered (below the one asked when
// sipp could not send faster).
func curve(res *result) []point {
	if res.capacity == nil {
		return nil
	}
	c := float64(res.c())
	pts := []point{{1, res.capacity.goodput}}
	for _, st := range res.loads {
		pts = append(pts, point{st.offered / c, st.goodput})
	}
	return pts
}

var colours = map[string]string{"locsvc": "#1f6fb4", "kamailio": "#d0392b"}

// figure draws goodput against offered load, one line per target, with
// each target's C as a dashed level: a line that stays at its C holds its
// goodput; one that falls below it collapses. Plain SVG, written by hand:
// axes, ticks, two polylines and a legend.
func figure(results []*result, c config) string {
	const w, h = 640.0, 400.0
	const left, right, top, bottom = 70.0, 150.0, 40.0, 50.0
	xmax, ymax := 1.0, 0.0
	for _, m := range c.loads {
		xmax = math.Max(xmax, m)
	}
	for _, res := range results {
		ymax = math.Max(ymax, float64(res.c()))
		for _, p := range curve(res) {
			xmax, ymax = math.Max(xmax, p.x), math.Max(ymax, p.y)
		}
	}
	xmax = math.Ceil(xmax*2+0.5) / 2
	ystep := niceStep(ymax / 5)
	ymax = math.Max(ystep, math.Ceil(ymax*1.1/ystep)*ystep)
	px := func(x float64) float64 { return left + x/xmax*(w-left-right) }
	py := func(y float64) float64 { return h - bottom - y/ymax*(h-top-bottom) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="14">REGISTER goodput under overload (overbench)</text>`+"\n", left)
	// Grid and ticks.
	for x := 0.0; x <= xmax+1e-9; x += 0.5 {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e4e4e4"/>`+"\n", px(x), py(0), px(x), py(ymax))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%gx</text>`+"\n", px(x), py(0)+18, x)
	}
	for y := 0.0; y <= ymax+1e-9; y += ystep {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e4e4e4"/>`+"\n", px(0), py(y), px(xmax), py(y))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", px(0)-6, py(y)+4, num(y))
	}
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", px(0), py(0), px(xmax), py(0))
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", px(0), py(0), px(0), py(ymax))
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">offered load, multiple of the target's capacity C</text>`+"\n", px(xmax/2), h-12)
	fmt.Fprintf(&b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">goodput, 200s per second</text>`+"\n", py(ymax/2))
	// One line per target, its C dashed.
	legendY := top + 10
	for _, res := range results {
		pts := curve(res)
		if len(pts) == 0 {
			continue
		}
		col := colours[res.target]
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="4 4" stroke-opacity="0.6"/>`+"\n",
			px(0), py(float64(res.c())), px(xmax), py(float64(res.c())), col)
		var coords []string
		for _, p := range pts {
			coords = append(coords, fmt.Sprintf("%.1f,%.1f", px(p.x), py(p.y)))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(coords, " "), col)
		for _, p := range pts {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", px(p.x), py(p.y), col)
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>`+"\n", w-right+15, legendY, w-right+40, legendY, col)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", w-right+46, legendY+4, res.target)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#555">C = %s/s</text>`+"\n", w-right+46, legendY+19, num(float64(res.c())))
		legendY += 40
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

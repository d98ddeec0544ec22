package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Chart geometry, in SVG user units (pixels).
const (
	svgWidth    = 1000
	svgRowH     = 26
	svgBarH     = 16
	svgTop      = 64 // title and panel headings
	svgBottom   = 48 // tick labels and axis titles
	svgPad      = 16
	svgGap      = 48 // between the two panels
	svgCharW    = 7  // estimated width of a 12 px sans-serif character
	svgMinLabel = 80
	svgMaxLabel = 260

	colorEvents = "#4c78a8"
	colorP99    = "#f58518"
	colorGrid   = "#e3e3e3"
	colorAxis   = "#555555"
	colorText   = "#222222"
)

// esc escapes s for XML text and attribute values.
func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s)) // writes to memory only
	return b.String()
}

// truncate shortens s to at most n characters, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n < 1 {
		return ""
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// axis is a linear scale from 0 to max with evenly spaced ticks.
type axis struct {
	max, step float64
}

// niceAxis picks a step of 1, 2, 2.5 or 5 × 10^k giving about five ticks
// and a maximum at the first tick at or above v.
func niceAxis(v float64) axis {
	if !(v > 0) || math.IsInf(v, 0) {
		return axis{max: 1, step: 0.2}
	}
	raw := v / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	n := math.Ceil(v/step - 1e-9)
	return axis{max: n * step, step: step}
}

func (a axis) ticks() []float64 {
	var t []float64
	for i := 0; ; i++ {
		v := float64(i) * a.step
		if v > a.max*(1+1e-9) {
			return t
		}
		t = append(t, v)
	}
}

// si formats a count with k/M/G suffixes: 250000 → "250k", 1500000 → "1.5M".
func si(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e9:
		return trim(v/1e9) + "G"
	case a >= 1e6:
		return trim(v/1e6) + "M"
	case a >= 1e3:
		return trim(v/1e3) + "k"
	}
	return trim(v)
}

// trim formats a tick value with at most three significant digits below
// 100 and no decimals above: 0.005, 2.5, 12.5, 250, 1500.
func trim(v float64) string {
	if math.Abs(v) >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// SVG writes a self-contained SVG chart of the rows: on the left one
// horizontal bar of events/s per scenario, on the right one bar of p99
// latency in milliseconds per scenario, both with axes, gridlines and tick
// labels. Each bar carries its value as a label and as a tooltip.
func SVG(w io.Writer, title string, rows []Row) error {
	labelW := svgMinLabel
	for _, r := range rows {
		labelW = max(labelW, utf8.RuneCountInString(r.Scenario)*svgCharW+svgPad)
	}
	labelW = min(labelW, svgMaxLabel)
	maxChars := (labelW - svgPad) / svgCharW

	n := max(len(rows), 1)
	plotH := n * svgRowH
	height := svgTop + plotH + svgBottom
	panelW := (svgWidth - labelW - svgGap - 2*svgPad) / 2
	x1 := labelW + svgPad      // left edge of the events panel
	x2 := x1 + panelW + svgGap // left edge of the latency panel
	y0 := svgTop               // top of the plots
	yAxis := y0 + plotH        // x axes

	var maxEv, maxP99 float64
	for _, r := range rows {
		maxEv = math.Max(maxEv, finite(r.EventsPerSec))
		maxP99 = math.Max(maxP99, ms(r.P99))
	}
	evAxis, latAxis := niceAxis(maxEv), niceAxis(maxP99)

	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n",
		svgWidth, height, svgWidth, height)
	fmt.Fprintf(&b, `<title>%s</title>`+"\n", esc(title))
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", svgWidth, height)
	fmt.Fprintf(&b, `<text x="%d" y="26" font-size="16" font-weight="bold" fill="%s">%s</text>`+"\n", svgPad, colorText, esc(title))

	panel := func(x int, a axis, heading, unit string, tick func(float64) string) {
		fmt.Fprintf(&b, `<g class="panel">`+"\n")
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold" fill="%s">%s</text>`+"\n", x, y0-12, colorText, esc(heading))
		for _, t := range a.ticks() {
			tx := float64(x) + t/a.max*float64(panelW)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", tx, y0, tx, yAxis, colorGrid)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", tx, yAxis, tx, yAxis+4, colorAxis)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="%s">%s</text>`+"\n", tx, yAxis+17, colorAxis, esc(tick(t)))
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`+"\n", x, yAxis, x+panelW, yAxis, colorAxis)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`+"\n", x, y0, x, yAxis, colorAxis)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="%s">%s</text>`+"\n", x+panelW/2, yAxis+36, colorAxis, esc(unit))
		fmt.Fprintf(&b, "</g>\n")
	}
	panel(x1, evAxis, "Throughput", "events per second", si)
	panel(x2, latAxis, "p99 latency", "milliseconds", trim)

	bar := func(class, color string, x int, a axis, v float64, y int, label, tip string) {
		wv := 0.0
		if v > 0 {
			wv = v / a.max * float64(panelW)
		}
		fmt.Fprintf(&b, `<rect class="%s" x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>`+"\n",
			class, x, y, wv, svgBarH, color, esc(tip))
		// The value sits after the bar, or inside its end when the bar
		// leaves no room.
		ty := y + svgBarH/2 + 4
		if labelRoom := float64(len(label)*svgCharW + 8); wv+labelRoom > float64(panelW) {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="end" fill="#ffffff">%s</text>`+"\n", float64(x)+wv-4, ty, esc(label))
		} else {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="%s">%s</text>`+"\n", float64(x)+wv+4, ty, colorText, esc(label))
		}
	}
	if len(rows) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">no results</text>`+"\n", x1+8, y0+svgRowH/2+4, colorAxis)
	}
	for i, r := range rows {
		y := y0 + i*svgRowH + (svgRowH-svgBarH)/2
		fmt.Fprintf(&b, `<text class="label" x="%d" y="%d" text-anchor="end" fill="%s"><title>%s</title>%s</text>`+"\n",
			labelW, y+svgBarH/2+4, colorText, esc(r.Scenario), esc(truncate(r.Scenario, maxChars)))
		ev := finite(r.EventsPerSec)
		bar("events", colorEvents, x1, evAxis, ev, y, Thousands(ev),
			fmt.Sprintf("%s: %s events/s", r.Scenario, Thousands(ev)))
		p := ms(r.P99)
		bar("p99", colorP99, x2, latAxis, p, y, Millis(r.P99),
			fmt.Sprintf("%s: p99 %s ms", r.Scenario, Millis(r.P99)))
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

package report

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// SoakPanel is one panel of the soak chart: a series over time, with the
// fit of its first line drawn after the warm-up.
type SoakPanel struct {
	Key, Title, Unit string
	Lines            []SoakLine
	Fit              *SoakFit      // of Lines[0], nil for none
	Segments         []SoakSegment // horizontal marks, e.g. the p99 of each phase
}

// SoakLine is one line of a panel: a value per sample of the soak.
type SoakLine struct {
	Name   string
	Values []float64
	Color  string // "" picks the panel's colour
}

// SoakSegment is a horizontal mark from From to To at Value.
type SoakSegment struct {
	From, To time.Duration
	Value    float64
	Label    string
}

// Soak chart geometry, in SVG user units.
const (
	soakLeft    = 72  // y tick labels
	soakRight   = 24  //
	soakHead    = 96  // title, subtitle and legend
	soakPanelH  = 112 // plot height of one panel
	soakPanelGp = 60  // panel title above, tick labels below
	colorFit    = "#222222"
	colorWarm   = "#f0f0f0"
	colorSecond = "#9ecae9"
	colorSeg    = "#e45756"
)

// SoakSVG writes a self-contained SVG chart of a soak: one panel per
// series, time in minutes across, the warm-up shaded, each judged series'
// least-squares line dashed over the part it was fitted on.
func SoakSVG(w io.Writer, title string, s *Soak, panels []SoakPanel) error {
	plotW := svgWidth - soakLeft - soakRight
	height := soakHead + len(panels)*(soakPanelH+soakPanelGp) + 16
	// The axis spans the run as planned; a last sample a little late is
	// drawn at its end.
	end := s.Duration
	if end <= 0 {
		for _, m := range s.Samples {
			end = max(end, m.At)
		}
	}
	if end <= 0 {
		end = time.Minute
	}
	xAxis := niceAxis(end.Minutes())
	span := time.Duration(xAxis.max * float64(time.Minute))
	xOf := func(t time.Duration) float64 {
		return float64(soakLeft) + math.Max(0, math.Min(1, float64(t)/float64(span)))*float64(plotW)
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n",
		svgWidth, height, svgWidth, height)
	fmt.Fprintf(&b, `<title>%s</title>`+"\n", esc(title))
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", svgWidth, height)
	fmt.Fprintf(&b, `<text x="%d" y="26" font-size="16" font-weight="bold" fill="%s">%s</text>`+"\n", svgPad, colorText, esc(title))
	sub := fmt.Sprintf("raw session retention %s, %s; sampled every %s; minutes since the load started", onOff(s.Retention), strings.ReplaceAll(pluginList(s.Plugins), "`", ""), s.Every)
	fmt.Fprintf(&b, `<text x="%d" y="48" fill="%s">%s</text>`+"\n", svgPad, colorAxis, esc(sub))
	// Legend.
	ly := 70
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="18" height="10" fill="%s" stroke="%s"/>`+"\n", svgPad, ly-9, colorWarm, colorGrid)
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">warm-up (first %s min, not fitted)</text>`+"\n", svgPad+24, ly, colorAxis, minutes(s.Warmup))
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="1.5" stroke-dasharray="6 4"/>`+"\n", svgPad+260, ly-4, svgPad+290, ly-4, colorFit)
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">least-squares line after the warm-up</text>`+"\n", svgPad+296, ly, colorAxis)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", svgPad+540, ly-4, svgPad+570, ly-4, colorSeg)
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">p99 of each third, all its requests pooled</text>`+"\n", svgPad+576, ly, colorAxis)

	for i, p := range panels {
		top := soakHead + i*(soakPanelH+soakPanelGp) + 28
		bottom := top + soakPanelH
		maxV := 0.0
		for _, l := range p.Lines {
			for _, v := range l.Values {
				if !math.IsNaN(v) && !math.IsInf(v, 0) {
					maxV = math.Max(maxV, v)
				}
			}
		}
		for _, sg := range p.Segments {
			maxV = math.Max(maxV, finite(sg.Value))
		}
		ya := niceAxis(maxV)
		yOf := func(v float64) float64 {
			return float64(bottom) - math.Max(0, math.Min(1, v/ya.max))*float64(soakPanelH)
		}
		fmt.Fprintf(&b, `<g class="panel" id="%s">`+"\n", esc(p.Key))
		heading := p.Title + " (" + p.Unit + ")"
		if f := p.Fit; f != nil && !math.IsNaN(f.Slope) {
			heading += fmt.Sprintf(" · fit: %s %s/h, %s of the mean per hour", signed(f.Slope), p.Unit, pct(f.Rel))
			if f.Judged {
				heading += " · " + f.Verdict
			}
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold" fill="%s">%s</text>`+"\n", soakLeft, top-10, colorText, esc(heading))
		// Warm-up shading, grid and axes.
		fmt.Fprintf(&b, `<rect class="warmup" x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", soakLeft, top, xOf(s.Warmup)-soakLeft, soakPanelH, colorWarm)
		for _, t := range ya.ticks() {
			y := yOf(t)
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`+"\n", soakLeft, y, soakLeft+plotW, y, colorGrid)
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" fill="%s">%s</text>`+"\n", soakLeft-6, y+4, colorAxis, esc(si(t)))
		}
		for _, t := range xAxis.ticks() {
			x := xOf(time.Duration(t * float64(time.Minute)))
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", x, bottom, x, bottom+4, colorAxis)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="%s">%s</text>`+"\n", x, bottom+17, colorAxis, esc(trim(t)))
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`+"\n", soakLeft, bottom, soakLeft+plotW, bottom, colorAxis)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`+"\n", soakLeft, top, soakLeft, bottom, colorAxis)
		// Lines, the first one on top.
		for li := len(p.Lines) - 1; li >= 0; li-- {
			l := p.Lines[li]
			color := l.Color
			if color == "" {
				color = colorEvents
				if li > 0 {
					color = colorSecond
				}
			}
			var pts strings.Builder
			for j, v := range l.Values {
				if j >= len(s.Samples) || math.IsNaN(v) || math.IsInf(v, 0) {
					continue
				}
				fmt.Fprintf(&pts, "%.1f,%.1f ", xOf(s.Samples[j].At), yOf(v))
			}
			fmt.Fprintf(&b, `<polyline class="series" fill="none" stroke="%s" stroke-width="1.5" points="%s"><title>%s</title></polyline>`+"\n",
				color, strings.TrimSpace(pts.String()), esc(l.Name))
		}
		// Several lines: their names, right-aligned on the heading's line.
		if len(p.Lines) > 1 {
			x := soakLeft + plotW
			for li := len(p.Lines) - 1; li >= 0; li-- {
				l := p.Lines[li]
				color := l.Color
				if color == "" {
					color = colorEvents
					if li > 0 {
						color = colorSecond
					}
				}
				fmt.Fprintf(&b, `<text class="legend" x="%d" y="%d" text-anchor="end" fill="%s">— %s</text>`+"\n", x, top-10, color, esc(l.Name))
				x -= (len([]rune(l.Name))+2)*svgCharW + 12
			}
		}
		for _, sg := range p.Segments {
			y := yOf(sg.Value)
			fmt.Fprintf(&b, `<line class="segment" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"><title>%s</title></line>`+"\n",
				xOf(sg.From), y, xOf(sg.To), y, colorSeg, esc(sg.Label))
		}
		if f := p.Fit; f != nil && !math.IsNaN(f.Slope) {
			t0, t1 := s.Warmup, end
			v0 := f.Intercept + f.Slope*t0.Hours()
			v1 := f.Intercept + f.Slope*t1.Hours()
			fmt.Fprintf(&b, `<line class="fit" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="6 4"><title>%s</title></line>`+"\n",
				xOf(t0), yOf(v0), xOf(t1), yOf(v1), colorFit,
				esc(fmt.Sprintf("%s: %s %s per hour (± %s), %s of the mean per hour", p.Title, signed(f.Slope), p.Unit, num(f.SlopeCI), pct(f.Rel))))
		}
		fmt.Fprintf(&b, "</g>\n")
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// signed formats v with about three significant digits and its sign.
func signed(v float64) string {
	s := num(v)
	if v >= 0 && !strings.HasPrefix(s, "-") {
		return "+" + s
	}
	return s
}

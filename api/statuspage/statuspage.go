// Package statuspage draws a node's Status as one self-contained HTML page:
// the ring as a circle whose arcs are the shards' shares of the key space,
// the members, and repair's progress. It is kept apart from package api,
// which only translates calls, because it is a renderer with its own
// geometry (arcs, gaps, label placement) and its own tests.
package statuspage

import (
	"bytes"
	"html/template"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/locsvc/locsvc/api/locsvcv1"
)

// Colours of a shard on the status page, from the Okabe-Ito palette so that
// they stay apart under the common colour-vision deficiencies. Colour is
// never the only cue: every shard also carries its state as text, in a
// title and in a data-state attribute, and unhealthy markers are dashed.
const (
	StatusColorHealthy   = "#0072B2" // blue
	StatusColorUnhealthy = "#D55E00" // vermillion
	StatusColorGone      = "#999999" // grey: its member is leaving or dead
)

// Shard states on the status page (the data-state attribute).
const (
	shardHealthy   = "healthy"
	shardUnhealthy = "unhealthy"
	shardLeaving   = "leaving"
	shardDead      = "dead"
	// The member is away for a restart; its shard stays in placement and
	// its memcached, still reached directly, serves.
	shardRestarting = "restarting"
)

// statusRefresh is how often the page reloads itself (seconds): short
// enough to watch a failover, long enough not to load a node that is
// already struggling.
const statusRefresh = 5

// The drawing, in SVG user units. The width leaves room for labels on
// both sides of the ring.
const (
	svgWidth      = 960
	svgHeight     = 620
	ringRadius    = 150.0 // centre line of the ownership arcs
	ringThickness = 34.0
	markerOrbit   = 218.0 // where the shard markers sit
	markerMax     = 18.0
	labelGap      = 10.0
	// arcGap is the visual gap between neighbouring arcs, in turns, so
	// that two healthy shards do not merge into one band.
	arcGap = 0.003
	// Beyond this many shards the labels would overlap: the tables
	// below the drawing still list every shard.
	maxLabelled = 16
	labelRunes  = 28
)

// arc is a part of the circle in turns (0..1), clockwise from 12 o'clock.
type arc struct{ Start, End float64 }

func (a arc) len() float64 { return a.End - a.Start }

func (a arc) mid() float64 { return (a.Start + a.End) / 2 }

// ownershipArcs lays the shares end to end around the circle, in order,
// each arc as long as its share of the total. The total, not 1, is the
// whole circle: a view taken while the ring changes, or rounding, may not
// sum to exactly 1, and the ring should still close. Shares that are not
// positive finite numbers get an empty arc at their place. If nothing owns
// anything (every shard down), every arc is empty.
func ownershipArcs(shares []float64) []arc {
	out := make([]arc, len(shares))
	total := 0.0
	for _, s := range shares {
		total += usableShare(s)
	}
	if total <= 0 || math.IsInf(total, 0) {
		return out
	}
	// The running sum is added in the same order as total, so the last
	// non-empty arc ends at exactly 1.
	sum := 0.0
	for i, s := range shares {
		start := sum / total
		sum += usableShare(s)
		out[i] = arc{Start: start, End: sum / total}
	}
	return out
}

func usableShare(s float64) float64 {
	if s > 0 && !math.IsInf(s, 0) { // NaN fails s > 0
		return s
	}
	return 0
}

// withGaps shortens each arc at both ends by gap turns when more than one
// arc is drawn, so that neighbours stay apart; an arc too short to lose
// that much keeps its length (a sliver should remain visible).
func withGaps(arcs []arc, gap float64) []arc {
	out := make([]arc, len(arcs))
	copy(out, arcs)
	drawn := 0
	for _, a := range arcs {
		if a.len() > 0 {
			drawn++
		}
	}
	if drawn < 2 {
		return out
	}
	for i, a := range out {
		if a.len() > 4*gap {
			out[i] = arc{Start: a.Start + gap, End: a.End - gap}
		}
	}
	return out
}

// point is where a turn fraction lands on a circle of radius r around
// (cx, cy), with SVG's y axis pointing down.
func point(cx, cy, r, turn float64) (x, y float64) {
	a := 2*math.Pi*turn - math.Pi/2
	return cx + r*math.Cos(a), cy + r*math.Sin(a)
}

// arcPath is the SVG path of an arc drawn as a stroke of radius r; "" for
// an empty arc. A whole circle needs two half arcs: an SVG arc whose ends
// coincide draws nothing.
func arcPath(a arc, cx, cy, r float64) string {
	l := a.len()
	switch {
	case !(l > 0):
		return ""
	case l >= 1-1e-9:
		return "M " + num(cx) + " " + num(cy-r) +
			" A " + num(r) + " " + num(r) + " 0 1 1 " + num(cx) + " " + num(cy+r) +
			" A " + num(r) + " " + num(r) + " 0 1 1 " + num(cx) + " " + num(cy-r)
	}
	x0, y0 := point(cx, cy, r, a.Start)
	x1, y1 := point(cx, cy, r, a.End)
	large := "0"
	if l > 0.5 {
		large = "1"
	}
	return "M " + num(x0) + " " + num(y0) + " A " + num(r) + " " + num(r) + " 0 " + large + " 1 " + num(x1) + " " + num(y1)
}

// markerTurn places shard i of n evenly around the circle, centred on
// where its arc would be if all shares were equal, so that in a balanced
// ring marker and arc line up.
func markerTurn(i, n int) float64 {
	if n <= 0 {
		return 0
	}
	return (float64(i) + 0.5) / float64(n)
}

// nearestTurn is the point of a (non-empty) arc closest to turn t going
// round the circle either way: t itself when the arc covers it, else the
// nearer end.
func nearestTurn(t float64, a arc) float64 {
	if t >= a.Start && t <= a.End {
		return t
	}
	if turnDistance(t, a.Start) <= turnDistance(t, a.End) {
		return a.Start
	}
	return a.End
}

// turnDistance is the shorter way round between two turns.
func turnDistance(a, b float64) float64 {
	d := math.Mod(math.Abs(a-b), 1)
	return math.Min(d, 1-d)
}

// leaderPath joins a marker at turn m (inner edge at radius from) to the
// nearest point of its arc (outer edge at radius to): in along m's
// radius, round the circle at radius via, then in to the arc. Unlike a
// straight line it never cuts across the ring or other arcs.
func leaderPath(m float64, a arc, cx, cy, from, via, to float64) string {
	t := nearestTurn(m, a)
	x0, y0 := point(cx, cy, from, m)
	x3, y3 := point(cx, cy, to, t)
	if turnDistance(m, t) < 1e-9 {
		return "M " + num(x0) + " " + num(y0) + " L " + num(x3) + " " + num(y3)
	}
	x1, y1 := point(cx, cy, via, m)
	x2, y2 := point(cx, cy, via, t)
	// Clockwise when t is ahead of m by less than half a turn.
	sweep := "0"
	if math.Mod(t-m+1, 1) < 0.5 {
		sweep = "1"
	}
	return "M " + num(x0) + " " + num(y0) + " L " + num(x1) + " " + num(y1) +
		" A " + num(via) + " " + num(via) + " 0 0 " + sweep + " " + num(x2) + " " + num(y2) +
		" L " + num(x3) + " " + num(y3)
}

// markerRadius shrinks markers as shards are added so that neighbours on
// the orbit do not overlap.
func markerRadius(n int) float64 {
	if n <= 0 {
		return markerMax
	}
	return math.Min(markerMax, 0.4*2*math.Pi*markerOrbit/float64(n))
}

// labelAnchor is the text-anchor that keeps a label at this turn outside
// the circle: to the right on the right half, to the left on the left,
// centred near the top and bottom.
func labelAnchor(turn float64) string {
	x := math.Sin(2 * math.Pi * turn)
	switch {
	case x > 0.2:
		return "start"
	case x < -0.2:
		return "end"
	}
	return "middle"
}

// labelBaselines are the baselines of a two-line label whose reference
// point is at y, for a label at this turn: above the point near the top,
// below it near the bottom, centred on it at the sides.
func labelBaselines(y, turn float64) (first, second float64) {
	const line = 14
	c := math.Cos(2 * math.Pi * turn) // 1 at the top, -1 at the bottom
	top := y - line - line*c
	return top + 11, top + 11 + line
}

// shardState is how the page classifies a shard: a member that is going
// away (leaving, or no longer alive) matters more than its shard's last
// health report.
func shardState(s *locsvcv1.Shard, members map[string]*locsvcv1.Member) string {
	if m, ok := members[s.GetNodeId()]; ok {
		if !m.GetAlive() && m.GetState() == "restarting" {
			if s.GetHealthy() {
				return shardRestarting
			}
			return shardUnhealthy
		}
		if !m.GetAlive() {
			return shardDead
		}
		if m.GetState() == "leaving" {
			return shardLeaving
		}
	}
	if s.GetHealthy() {
		return shardHealthy
	}
	return shardUnhealthy
}

func stateColor(state string) string {
	switch state {
	case shardHealthy, shardRestarting:
		return StatusColorHealthy
	case shardUnhealthy:
		return StatusColorUnhealthy
	}
	return StatusColorGone
}

// truncate shortens s to at most n runes for a label; the full text stays
// in the tables and the tooltip.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

func percent(share float64) string {
	if math.IsNaN(share) || math.IsInf(share, 0) {
		return "?"
	}
	return strconv.FormatFloat(share*100, 'f', 1, 64) + "%"
}

// statusPage is everything the template draws, already laid out.
type statusPage struct {
	NodeID, Version, Store string
	Embedded               bool
	Replicas               uint32
	StartedAt, Generated   string
	Uptime                 string
	Refresh                int

	Width, Height  int
	CX, CY         string
	RingR, RingW   string
	Summary        string // under the ring's centre
	Counts         string
	Shards         []shardView
	Members        []memberView
	Repair         repairView
	Legend         []legendItem
	HealthyCount   int
	UnhealthyCount int
}

type shardView struct {
	Index                  int
	ID, Addr, NodeID, Zone string
	Healthy                bool
	State, Color, Dash     string
	Ownership, Percent     string
	Title                  string

	Path         string // the ownership arc; "" when it owns nothing
	MX, MY, MR   string // the marker
	ShowNumber   bool
	Leader       string // path from marker to arc; "" when it owns nothing
	ArcNumber    bool   // the shard's number on its arc, if the arc has room
	AX, AY       string
	ShowLabel    bool
	TX, TY1, TY2 string
	Anchor       string
	Label1       string
	Label2       string
}

type memberView struct {
	NodeID, State, Zone     string
	Alive                   string
	AliveOK                 bool
	Gossip, GRPC, HTTP, SIP string
	StatusURL               string
	Self                    bool
	ShardCount              int
}

type repairView struct {
	Running                           string
	Passes, Scanned, Copied, Failures uint64
	LastPass                          string
}

type legendItem struct{ Color, Dash, Text string }

// buildStatusPage lays out st for the template. now is passed in so that
// the page is a pure function of its inputs.
func buildStatusPage(st *locsvcv1.StatusResponse, now time.Time) statusPage {
	const cx, cy = svgWidth / 2.0, svgHeight / 2.0
	p := statusPage{
		NodeID: st.GetNodeId(), Version: st.GetVersion(), Store: st.GetStore(),
		Embedded: st.GetStore() == "embedded", Replicas: st.GetReplicas(),
		Generated: now.UTC().Format(time.RFC3339), Refresh: statusRefresh,
		Width: svgWidth, Height: svgHeight, CX: num(cx), CY: num(cy),
		RingR: num(ringRadius), RingW: num(ringThickness),
		Legend: []legendItem{
			{Color: StatusColorHealthy, Text: "healthy"},
			{Color: StatusColorUnhealthy, Dash: "4 3", Text: "unhealthy (health check failing)"},
			{Color: StatusColorHealthy, Dash: "1 3", Text: "member restarting (its shard still serves)"},
			{Color: StatusColorGone, Dash: "1 3", Text: "member leaving or dead"},
		},
	}
	if t := st.GetStartedAt(); t != nil && t.IsValid() {
		p.StartedAt = t.AsTime().UTC().Format(time.RFC3339)
		p.Uptime = now.Sub(t.AsTime()).Round(time.Second).String()
	}

	members := make(map[string]*locsvcv1.Member, len(st.GetMembers()))
	for _, m := range st.GetMembers() {
		members[m.GetNodeId()] = m
	}
	shards := st.GetShards()
	shares := make([]float64, len(shards))
	for i, s := range shards {
		shares[i] = s.GetOwnership()
	}
	drawn := withGaps(ownershipArcs(shares), arcGap)
	for i, s := range shards {
		v := layoutShard(s, i, len(shards), drawn[i], members)
		if v.State == shardHealthy || v.State == shardRestarting {
			p.HealthyCount++
		} else {
			p.UnhealthyCount++
		}
		p.Shards = append(p.Shards, v)
	}

	p.Counts = strconv.Itoa(p.HealthyCount) + " healthy, " + strconv.Itoa(p.UnhealthyCount) + " not"
	switch {
	case p.Embedded:
		// Two short lines: the centre of the ring is narrow.
		p.Summary, p.Counts = "embedded store", "single node, no ring"
	case len(shards) == 0:
		p.Summary = "no shards in the ring"
	default:
		p.Summary = strconv.Itoa(len(shards)) + " shards, R=" + strconv.FormatUint(uint64(p.Replicas), 10)
	}
	p.Members = memberViews(st)
	p.Repair = newRepairView(st.GetRepair())
	return p
}

// layoutShard places shard s, the i-th of n, whose arc (gaps applied) is
// drawn: its marker on the orbit, the leader line to its arc, its label.
func layoutShard(s *locsvcv1.Shard, i, n int, drawn arc, members map[string]*locsvcv1.Member) shardView {
	const cx, cy = svgWidth / 2.0, svgHeight / 2.0
	state := shardState(s, members)
	v := shardView{
		Index: i + 1, ID: s.GetId(), Addr: s.GetAddr(), NodeID: s.GetNodeId(), Zone: s.GetZone(),
		Healthy: s.GetHealthy(), State: state, Color: stateColor(state),
		Ownership: strconv.FormatFloat(s.GetOwnership(), 'f', 6, 64), Percent: percent(s.GetOwnership()),
		Path: arcPath(drawn, cx, cy, ringRadius),
	}
	switch state {
	case shardHealthy:
	case shardUnhealthy:
		v.Dash = "4 3"
	default:
		v.Dash = "1 3"
	}
	v.Title = "shard " + strconv.Itoa(v.Index) + " " + s.GetId() + " on " + s.GetNodeId() + ": " + state + ", owns " + v.Percent
	mr := markerRadius(n)
	turn := markerTurn(i, n)
	mx, my := point(cx, cy, markerOrbit, turn)
	v.MX, v.MY, v.MR = num(mx), num(my), num(mr)
	v.ShowNumber = mr >= 9
	if drawn.len() > 0 {
		outer := ringRadius + ringThickness/2
		v.Leader = leaderPath(turn, drawn, cx, cy, markerOrbit-mr, (outer+markerOrbit-mr)/2, outer)
	}
	if drawn.len() >= 0.03 && n > 1 {
		ax, ay := point(cx, cy, ringRadius, drawn.mid())
		v.ArcNumber, v.AX, v.AY = true, num(ax), num(ay)
	}
	if n <= maxLabelled {
		v.ShowLabel = true
		tx, ty := point(cx, cy, markerOrbit+mr+labelGap, turn)
		y1, y2 := labelBaselines(ty, turn)
		v.TX, v.TY1, v.TY2, v.Anchor = num(tx), num(y1), num(y2), labelAnchor(turn)
		v.Label1 = truncate(s.GetNodeId(), labelRunes)
		if s.GetNodeId() == "" {
			v.Label1 = truncate(s.GetId(), labelRunes)
		}
		v.Label2 = v.Percent + " · " + state
	}
	return v
}

// memberViews are the rows of the members table.
func memberViews(st *locsvcv1.StatusResponse) []memberView {
	shardsOf := map[string]int{}
	for _, s := range st.GetShards() {
		shardsOf[s.GetNodeId()]++
	}
	var out []memberView
	for _, m := range st.GetMembers() {
		alive := "dead"
		if m.GetAlive() {
			alive = "alive"
		}
		mv := memberView{
			NodeID: m.GetNodeId(), State: m.GetState(), Zone: m.GetZone(), Alive: alive, AliveOK: m.GetAlive(),
			Gossip: m.GetGossipAddr(), GRPC: m.GetGrpcAddr(), HTTP: m.GetHttpAddr(), SIP: m.GetSipAddr(),
			Self: m.GetNodeId() == st.GetNodeId(), ShardCount: shardsOf[m.GetNodeId()],
		}
		if m.GetHttpAddr() != "" {
			// Scheme-relative: the browser keeps http or https, as the
			// nodes of a cluster share their TLS settings.
			mv.StatusURL = "//" + m.GetHttpAddr() + "/status"
		}
		out = append(out, mv)
	}
	return out
}

func newRepairView(r *locsvcv1.Repair) repairView {
	v := repairView{
		Running: "no", Passes: r.GetPasses(), Scanned: r.GetKeysScanned(), Copied: r.GetKeysCopied(),
		Failures: r.GetFailures(), LastPass: "never",
	}
	if r.GetRunning() {
		v.Running = "yes"
	}
	if t := r.GetLastPassAt(); t != nil && t.IsValid() {
		v.LastPass = t.AsTime().UTC().Format(time.RFC3339)
	}
	return v
}

// The page is also well-formed XML (every element closed, no named
// entities beyond XML's own) so that tests and scripts can read it with
// encoding/xml.
var statusTemplate = template.Must(template.New("status").Parse(`<!DOCTYPE html>
<html lang="en" xmlns="http://www.w3.org/1999/xhtml">
<head>
<meta charset="utf-8"/>
<meta http-equiv="refresh" content="{{.Refresh}}"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
<title>locsvc status: {{.NodeID}}</title>
<style>
body { font-family: "DejaVu Sans", sans-serif; margin: 1.5em; color: #222; background: #fff; }
h1 { font-size: 1.4em; margin: 0 0 .2em; }
p.meta { margin: .2em 0; color: #555; }
table { border-collapse: collapse; margin: .5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; font-size: .9em; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: .9em; height: .9em; vertical-align: middle; margin: 0 .3em 0 1em; border: 1px solid #333; }
svg text { font-family: "DejaVu Sans", sans-serif; }
</style>
</head>
<body>
<h1>locsvc node {{.NodeID}}</h1>
<p class="meta">version {{.Version}} · store {{.Store}} · R={{.Replicas}}{{if .StartedAt}} · started {{.StartedAt}} (up {{.Uptime}}){{end}} · page generated {{.Generated}}, reloads every {{.Refresh}} s</p>
{{if .Embedded}}<p class="meta" id="embedded"><strong>embedded store, single node</strong>: no memcached ring; this node keeps every registration in memory.</p>{{end}}
<p class="meta" id="legend">{{range .Legend}}<span class="swatch" style="background: {{.Color}}"></span>{{.Text}}{{end}}</p>
<svg xmlns="http://www.w3.org/2000/svg" id="ring" role="img" aria-labelledby="ring-title" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}">
<title id="ring-title">Ring seen by {{.NodeID}}: {{.Summary}}, {{.Counts}}</title>
<circle cx="{{.CX}}" cy="{{.CY}}" r="{{.RingR}}" fill="none" stroke="#eeeeee" stroke-width="{{.RingW}}"/>
{{range .Shards}}<g class="shard" id="shard-{{.Index}}" data-shard="{{.ID}}" data-node="{{.NodeID}}" data-healthy="{{.Healthy}}" data-state="{{.State}}" data-ownership="{{.Ownership}}">
<title>{{.Title}}</title>
{{if .Path}}<path class="arc" d="{{.Path}}" fill="none" stroke="{{.Color}}" stroke-width="{{$.RingW}}"/>
{{end}}{{if .ArcNumber}}<text x="{{.AX}}" y="{{.AY}}" dy="0.35em" text-anchor="middle" font-size="12" font-weight="bold" fill="#ffffff">{{.Index}}</text>
{{end}}{{if .Leader}}<path class="leader" d="{{.Leader}}" fill="none" stroke="#777777" stroke-width="1"/>
{{end}}<circle class="marker" cx="{{.MX}}" cy="{{.MY}}" r="{{.MR}}" fill="{{.Color}}" stroke="#222222" stroke-width="2"{{if .Dash}} stroke-dasharray="{{.Dash}}"{{end}}/>
{{if .ShowNumber}}<text x="{{.MX}}" y="{{.MY}}" dy="0.35em" text-anchor="middle" font-size="13" font-weight="bold" fill="#ffffff">{{.Index}}</text>
{{end}}{{if .ShowLabel}}<text class="label" text-anchor="{{.Anchor}}" font-size="13" fill="#222222"><tspan x="{{.TX}}" y="{{.TY1}}">{{.Label1}}</tspan><tspan x="{{.TX}}" y="{{.TY2}}">{{.Label2}}</tspan></text>
{{end}}</g>
{{end}}<text x="{{.CX}}" y="{{.CY}}" dy="-0.3em" text-anchor="middle" font-size="16" font-weight="bold" fill="#222222">{{.Summary}}</text>
<text x="{{.CX}}" y="{{.CY}}" dy="1.1em" text-anchor="middle" font-size="14" fill="#444444">{{.Counts}}</text>
</svg>
<h2>Shards</h2>
<table id="shards">
<tr><th>#</th><th>shard</th><th>address</th><th>node</th><th>zone</th><th>state</th><th>ownership</th></tr>
{{range .Shards}}<tr data-shard="{{.ID}}" data-state="{{.State}}"><td class="num">{{.Index}}</td><td>{{.ID}}</td><td>{{.Addr}}</td><td>{{.NodeID}}</td><td>{{.Zone}}</td><td><span class="swatch" style="background: {{.Color}}"></span>{{.State}}</td><td class="num">{{.Percent}}</td></tr>
{{else}}<tr><td colspan="7">no shards</td></tr>
{{end}}</table>
<h2>Members</h2>
<table id="members">
<tr><th>node</th><th>state</th><th>alive</th><th>zone</th><th>shards</th><th>gossip</th><th>gRPC</th><th>HTTP</th><th>SIP</th></tr>
{{range .Members}}<tr data-node="{{.NodeID}}" data-alive="{{.AliveOK}}"><td>{{.NodeID}}{{if .Self}} (this node){{end}}</td><td>{{.State}}</td><td>{{.Alive}}</td><td>{{.Zone}}</td><td class="num">{{.ShardCount}}</td><td>{{.Gossip}}</td><td>{{.GRPC}}</td><td>{{if .StatusURL}}<a href="{{.StatusURL}}">{{.HTTP}}</a>{{end}}</td><td>{{.SIP}}</td></tr>
{{else}}<tr><td colspan="9">no members</td></tr>
{{end}}</table>
<h2>Repair</h2>
<table id="repair">
<tr><th>running</th><th>passes</th><th>keys scanned</th><th>keys copied</th><th>failures</th><th>last pass</th></tr>
<tr><td>{{.Repair.Running}}</td><td class="num">{{.Repair.Passes}}</td><td class="num">{{.Repair.Scanned}}</td><td class="num">{{.Repair.Copied}}</td><td class="num">{{.Repair.Failures}}</td><td>{{.Repair.LastPass}}</td></tr>
</table>
</body>
</html>
`))

// Render writes the page for st, as seen at now.
func Render(st *locsvcv1.StatusResponse, now time.Time) ([]byte, error) {
	var b bytes.Buffer
	if err := statusTemplate.Execute(&b, buildStatusPage(st, now)); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// result is what the tables show.
type result struct {
	n, replicas, aors int
	profile           string
	started           time.Time

	ready, converge []time.Duration // per node, from launching them all
	ownership       ownership
	records         []float64 // curr_items per memcached after registering
	registerRate    float64   // REGISTERs/s over gRPC while registering

	idle             time.Duration
	nodeCPU, mcCPU   []float64 // share of one core over idle
	nodeRSS          []float64 // bytes
	sent             []float64 // bytes/s each host sent to the others
	killed           []time.Duration
	restarted        []time.Duration
	splitLarge       []time.Duration
	splitSmall       []time.Duration
	healed           []time.Duration
	joinSeen         []time.Duration
	joinRepair       time.Duration
	copied           uint64
	newItems         float64
	newShare         float64 // the new shard's ownership at R, from the ring
	lookups, missing int

	bytes []bytesRow
}

// ownership is each shard's share over the mean, [min, max], at R=1 and
// at R, and the bound four binomial deviations give for each.
type ownership struct {
	shards int
	r1, rN [2]float64
	bound  [2]float64
}

type bytesRow struct {
	bindings              int
	what                  string
	aors                  int
	item, chunk, malloced float64 // per AoR
}

func (r *result) table(bin string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("## scalebench: %d nodes, R=%d, gossip profile %s (%s)", r.n, r.replicas, r.profile, r.started.Format("2006-01-02 15:04 UTC"))
	p("")
	p("Each node and its memcached on a host of its own (network namespaces on one bridge); times from polling every node's Status every %v: median and slowest node.", pollEvery)
	p("")
	p("| what | nodes watched | median | slowest |")
	p("| --- | --- | --- | --- |")
	row := func(what string, ds []time.Duration) {
		med, mx := spread(ds)
		p("| %s | %d | %s | %s |", what, len(ds), secs(med), secs(mx))
	}
	row("all launched at once: ready (/readyz)", r.ready)
	row("all launched at once: sees every member alive and every shard healthy", r.converge)
	row("a node killed (-9): seen dead", r.killed)
	row("the same node started again: seen alive", r.restarted)
	row(fmt.Sprintf("a third (%d) split off as a group: the larger side sees only itself", len(r.splitSmall)), r.splitLarge)
	row("the split: the smaller side sees only itself", r.splitSmall)
	row("the split healed: every member alive again", r.healed)
	row(fmt.Sprintf("node %d joins with an empty memcached: seen alive", r.n+1), r.joinSeen)
	p("")
	o := r.ownership
	p("| balance over %d shards | min / mean | max / mean | bound on max / mean (4 binomial deviations over 2^16 partitions) |", o.shards)
	p("| --- | --- | --- | --- |")
	p("| ring ownership, R=1 (exact) | %.4f | %.4f | %.3f |", o.r1[0], o.r1[1], o.bound[0])
	p("| ring ownership, R=%d (exact) | %.4f | %.4f | %.3f |", r.replicas, o.rN[0], o.rN[1], o.bound[1])
	lo, hi := minMaxOf(r.records)
	p("| records per memcached after %d AoRs at R=%d (sampled) | %.4f | %.4f | |", r.aors, r.replicas, lo, hi)
	p("")
	ideal := float64(r.aors*r.replicas) / float64(r.n+1)
	p("| join | figure |")
	p("| --- | --- |")
	p("| records copied by repair (sum of the nodes' counters) | %d (%.3f of the ideal %d x %d / %d = %.0f) |", r.copied, float64(r.copied)/ideal, r.aors, r.replicas, r.n+1, ideal)
	p("| records on the new memcached | %.0f (%.3f of the ideal) |", r.newItems, r.newItems/ideal)
	exact := r.newShare * float64(r.aors*r.replicas)
	p("| the same against the new shard's exact share of the ring (%.5f, so %.0f records) | %.3f |", r.newShare, exact, r.newItems/exact)
	p("| from launch until repair settled | %s |", secs(r.joinRepair))
	p("| REGISTERs over gRPC while loading (%d concurrent, all nodes) | %.0f/s |", 32, r.registerRate)
	p("| lookups of registered users at the end, through 3 nodes | %d, %d missing |", r.lookups, r.missing)
	p("")
	p("| idle, %v, no traffic | mean | largest |", r.idle.Round(time.Second))
	p("| --- | --- | --- |")
	cm, cx := meanMax(r.nodeCPU)
	p("| node CPU (share of one core) | %.2f %% | %.2f %% |", 100*cm, 100*cx)
	mm, mx := meanMax(r.mcCPU)
	p("| memcached CPU | %.2f %% | %.2f %% |", 100*mm, 100*mx)
	sm, sx := meanMax(r.sent)
	p("| bytes/s a host sends to the others (gossip: probes, acks, push/pull) | %.0f | %.0f |", sm, sx)
	rm, rx := meanMax(r.nodeRSS)
	p("| node VmRSS | %.1f MB | %.1f MB |", rm/(1<<20), rx/(1<<20))
	if len(r.bytes) > 0 {
		p("")
		p("| bindings per AoR (%d AoRs over SIP, one node, one memcached, R=1) | phones | item bytes per AoR | slab chunk bytes per AoR | memcached total_malloced per AoR |", r.bytes[0].aors)
		p("| --- | --- | --- | --- | --- |")
		for _, x := range r.bytes {
			p("| %d | %s | %.0f | %.0f | %.0f |", x.bindings, x.what, x.item, x.chunk, x.malloced)
		}
	}
	p("")
	p("locsvc: %s", bin)
	return b.String()
}

// csv is every node's time in every phase, in seconds.
func (r *result) csv() string {
	lines := []string{"phase,node_index,seconds"}
	for _, ph := range []struct {
		name string
		ds   []time.Duration
	}{{"ready", r.ready}, {"converge", r.converge}, {"killed", r.killed}, {"restarted", r.restarted},
		{"split_large", r.splitLarge}, {"split_small", r.splitSmall}, {"healed", r.healed}, {"join_seen", r.joinSeen}} {
		for i, d := range ph.ds {
			lines = append(lines, fmt.Sprintf("%s,%d,%.3f", ph.name, i, d.Seconds()))
		}
	}
	return joinLines(lines)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func meanMax(v []float64) (mean, largest float64) {
	for _, x := range v {
		mean += x
		largest = max(largest, x)
	}
	if len(v) > 0 {
		mean /= float64(len(v))
	}
	return mean, largest
}

// minMaxOf is the smallest and largest of v over their mean.
func minMaxOf(v []float64) (lo, hi float64) {
	if len(v) == 0 {
		return 0, 0
	}
	mean, _ := meanMax(v)
	return slices.Min(v) / mean, slices.Max(v) / mean
}

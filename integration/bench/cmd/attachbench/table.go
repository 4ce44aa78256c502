package main

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/ratesearch"
)

// sizingRates are the REGISTER rates of the -m table.
var sizingRates = []float64{1000, 5000, 20000}

// The edge's lifetime of a REGISTER's transaction when locsvc does not
// answer: sip-style.cfg's LOCSVC_TIMEOUT (t_set_fr, 2 s) plus tm's
// wt_timer (5 s) after the 503.
const silentLife = 2.0 + 5.0

func (r *runner) table(res *results) string {
	var b strings.Builder
	mode := fmt.Sprintf("Sustainable rate: no failed call, retransmissions < 0.1 %% of calls, achieved >= 97 %% of offered; %s steps, %d users", r.c.step, r.c.users)
	if r.c.smoke {
		mode = fmt.Sprintf("Smoke: one %s step at %d/s per row, %d users; nothing here is a measurement", r.c.step, r.c.smokeRate, r.c.users)
	}
	fmt.Fprintf(&b, "\n## attachbench %s\n\n%s. All the load goes to one entry point: A's edge, B's node 1. "+
		"p50/p99: sipp response times (1 ms resolution) at that rate. CPU: CPU time of all the deployment's processes per answered request at that rate. "+
		"A ratio marked >= or <= is a bound (a search ran out of its budget first), ~ when both did.\n\n", time.Now().UTC().Format(time.RFC3339), mode)

	row := func(cells ...string) { fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | ")) }
	row("request", deploymentTitle[attached], deploymentTitle[dmq], "A / B", "A p50 / p99", "B p50 / p99", "A CPU/req", "B CPU/req")
	row("---", "---", "---", "---", "---", "---", "---", "---")
	for _, q := range r.c.requests {
		a, d := res.find(attached, q).found(), res.find(dmq, q).found()
		row(requestTitle[q], a.RateCell(), d.RateCell(), ratesearch.RateRatio(a, d), a.LatCell(), d.LatCell(), a.CPUCell(), d.CPUCell())
	}
	fmt.Fprintf(&b, "\nReplication seen on the other side (A: node 2 looks up a user with the edge's Path; B: node 2 holds as many users as node 1): A %s; B %s.\n",
		noteOr(res.notes[attached]), noteOr(res.notes[dmq]))

	b.WriteString("\n### Shared memory per transaction\n\n" +
		"Each Kamailio's `core.shmmem` real_used over its `tm.stats` current (transactions in memory), read with kamcmd during every passing step: " +
		"the least-squares slope, and how long a request's transaction stays (transactions at the level / achieved rate); medians over the steps. " +
		"B's node 1 holds a transaction per KDMQ request it sends (one per REGISTER), and its slope includes the usrloc records the first steps add.\n\n")
	row("Kamailio", "load", "bytes per transaction", "transaction life", "shm per request/s", "shm at rest", "steps")
	row("---", "---", "---", "---", "---", "---", "---")
	var edgeFit *memFit
	for _, dep := range []string{attached, dmq} {
		for _, q := range r.c.requests {
			s := res.find(dep, q)
			if s == nil {
				continue
			}
			for _, k := range kamNames(dep) {
				f, ok := fitMemory(s, k)
				if !ok {
					row(dep+" "+k, string(q), "-", "-", "-", "-", "0")
					continue
				}
				if dep == attached && q == register {
					edgeFit = &f
				}
				perRate := "-"
				if !math.IsNaN(f.lifetime) {
					perRate = kb(f.perTx * f.lifetime)
				}
				row(dep+" "+k, string(q), kb(f.perTx), secs(f.lifetime), perRate, mb(float64(f.base)), fmt.Sprint(f.steps))
			}
		}
	}

	if edgeFit != nil && !math.IsNaN(edgeFit.lifetime) {
		f := *edgeFit
		fmt.Fprintf(&b, "\n### The edge's -m for a REGISTER rate\n\n"+
			"shm = at rest + rate × life × bytes per transaction, with this run's %s at rest, %s per transaction and %s of life; "+
			"when locsvc stops answering every transaction lives %.0f s (LOCSVC_TIMEOUT 2 s, then tm's wt_timer 5 s). "+
			"-m: the silent case plus 25 %%, rounded up to 64 MB.\n\n", mb(float64(f.base)), kb(f.perTx), secs(f.lifetime), silentLife)
		row("REGISTER/s", "transactions", "shm", "transactions, locsvc silent", "shm then", "-m")
		row("---", "---", "---", "---", "---", "---")
		for _, rate := range sizingRates {
			silent := f.shmFor(rate, silentLife)
			row(fmt.Sprintf("%.0f", rate), fmt.Sprintf("%.0f", rate*f.lifetime), mb(f.shmFor(rate, f.lifetime)),
				fmt.Sprintf("%.0f", rate*silentLife), mb(silent), fmt.Sprint(suggestMB(silent)))
		}
		fmt.Fprintf(&b, "\nAt Kamailio's default -m 64 the edge fills at %.0f REGISTER/s.\n", f.maxRate(64<<20))
	}

	if c := res.check; c != nil {
		fmt.Fprintf(&b, "\n### Check: the edge at -m %d\n\nPredicted to fill at %.0f REGISTER/s (at rest %s). Each step %s.\n\n",
			c.mb, c.predicted, mb(float64(c.base)), r.c.checkStep)
		row("offered", "of predicted", "verdict", "edge peak shm / -m", "out-of-shm log lines")
		row("---", "---", "---", "---", "---")
		for _, s := range c.steps {
			row(fmt.Sprintf("%d/s", s.st.rate), fmtFactor(s.factor), s.st.verdict,
				fmt.Sprintf("%s / %s", mb(float64(s.peakUsed)), mb(float64(s.total))), fmt.Sprint(s.outOfShm))
		}
	} else if !r.c.smoke && r.c.checkMB > 0 {
		b.WriteString("\nSizing check: not run (no fit of the edge's memory).\n")
	}

	fmt.Fprintf(&b, "\nA: Kamailio edge (integration/kamailio/sip-style.cfg, 4 UDP children, log level 1) forwarding to node 1 of 2 locsvc nodes "+
		"(--sip-mode redirect, --replicas 2, --register-rate 0, each on its own memcached -t 1). "+
		"B: 2 Kamailio (integration/bench/kamailio-dmq.cfg, %d UDP children per listener), dmq_usrloc replicating node 1's table to node 2. "+
		"Kamailio -m %d during the searches. INVITEs reach one sipp phone answering 486. Raw data: %s\n", r.c.kamChildren, r.c.shmMB, r.dir)
	return b.String()
}

func kamNames(dep string) []string {
	if dep == attached {
		return []string{"edge"}
	}
	return []string{"dmq1", "dmq2"}
}

// suggestMB is bytes plus 25 %, in MB rounded up to a multiple of 64.
func suggestMB(bytes float64) int {
	m := int(math.Ceil(bytes * 1.25 / (1 << 20)))
	return (m + 63) / 64 * 64
}

func noteOr(n string) string {
	if n == "" {
		return "not checked"
	}
	return n
}

// kb and mb count as Kamailio's -m does: 1 MB = 2^20 bytes.
func kb(v float64) string { return fmt.Sprintf("%.1f KB", v/(1<<10)) }
func mb(v float64) string { return fmt.Sprintf("%.1f MB", v/(1<<20)) }

func secs(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.2f s", v)
}

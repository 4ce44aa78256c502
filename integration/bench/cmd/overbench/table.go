package main

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

const stepCSVHeader = "target,kind,label,multiple,offered_rate,phones,started_per_s,successful,gave_up,still_retrying,not_started," +
	"registers_sent,refusals_503,retransmissions,retrans_pct,goodput_per_s,goodput_over_c,p50_ms,p99_ms,max_ms,last_200_s," +
	"peak_rss_server_bytes,peak_rss_memcached_bytes,cpu_server_s,cpu_sipp_s,rcvbuf_errors,drops_server,drops_sipp,wall_s,pass,verdict,dir"

func (st *step) csv() string {
	return fmt.Sprintf("%s,%s,%s,%g,%d,%d,%.1f,%d,%d,%d,%d,%d,%d,%d,%.3f,%.1f,%.3f,%g,%g,%g,%.2f,%d,%d,%.2f,%.2f,%d,%d,%d,%.2f,%t,%q,%s",
		st.target, st.kind, st.label, st.mult, st.rate, st.calls, st.offered, st.ok, st.failed, st.unfinished, st.notStarted,
		st.registers, st.refusals, st.retrans, st.retransPct(), st.goodput, st.overC(), st.p50, st.p99, st.max, st.lastAt,
		st.serverRSS(), st.peakRSS["memcached"], st.serverCPU(), st.cpu["sipp"], st.rcvbufErrs, st.serverDrops, st.sippDrops, st.wall.Seconds(),
		st.pass, st.verdict, st.dir)
}

func (st *step) log() {
	logf("%-8s %-16s %6d/s x %6d: started %6.0f/s, ok %d, gave up %d, retrying %d, REGISTERs %d (503 %d), retrans %.2f%%, goodput %.0f/s, p50 %s p99 %s, last 200 at %.1f s, peak RSS %s, CPU server %.2f sipp %.2f cores: %s",
		st.target, st.label, st.rate, st.calls, st.offered, st.ok, st.failed, st.unfinished, st.registers, st.refusals,
		st.retransPct(), st.goodput, dur(st.p50), dur(st.p99), st.lastAt, mb(st.serverRSS()),
		st.serverCPU()/st.wall.Seconds(), st.cpu["sipp"]/st.wall.Seconds(), st.verdict)
}

// overC is the goodput as a multiple of the target's C.
func (st *step) overC() float64 {
	if st.capacity == 0 {
		return 0
	}
	return st.goodput / float64(st.capacity)
}

func (r *runner) table(results []*result) string {
	var b strings.Builder
	c := r.c
	fmt.Fprintf(&b, "\n## overbench %s\n\n", time.Now().UTC().Format(time.RFC3339))
	if c.smoke {
		fmt.Fprintf(&b, "Smoke run: tiny rates, measures nothing.\n\n")
	}
	fmt.Fprintf(&b, "C: highest sustainable REGISTER rate (no failure, retransmissions < 0.1 %%, achieved >= 97 %% of offered; %s steps). "+
		"Loads: phones start at the multiple of the target's own C for %s, each retrying after a 503's Retry-After with a new transaction "+
		"and giving up when one goes unanswered for %s; the step ends when every phone is done, or %s after the load. "+
		"Avalanche: %d distinct phones starting at %d/s. "+
		"offered/s: phones started per second (asked rate in brackets when sipp fell short); phones: phones started. "+
		"Time to 200: from a phone's first REGISTER to its 200, across retries. Retransmissions: sipp's, as a share of the REGISTER transactions. "+
		"Dropped: datagrams the kernel dropped because a receive queue was full, at the server's socket / at sipp's (each one a retransmission; sipp's own are the load generator falling behind, not the server). "+
		"Goodput: 200s per second while the load was offered (avalanche: until the last 200). "+
		"Last 200: seconds from the first REGISTER to the last 200. Peak RSS: VmHWM of locsvc (memcached apart), of Kamailio's processes summed.\n\n",
		c.searchStep, c.loadStep, c.giveUp, c.drain, c.avalanchePhones, c.avalancheRate)
	fmt.Fprintln(&b, "| target | load | offered/s | phones | REGISTERs sent | gave up | still retrying | time to 200 p50 / p99 | retransmissions | dropped server / sipp | goodput/s | goodput / C | last 200 at | peak RSS |")
	fmt.Fprintln(&b, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, res := range results {
		if res.capacity == nil {
			fmt.Fprintf(&b, "| %s | C | none (%s) | | | | | | | | | | | |\n", res.target, res.note)
			continue
		}
		cs := res.capacity
		load := "C"
		switch {
		case cs.label == "given":
			fmt.Fprintf(&b, "| %s | C (given, not searched) | %s | | | | | | | | | | | |\n", res.target, num(float64(cs.rate)))
		case res.bounded:
			load = "C (>=: " + res.note + ")"
			fallthrough
		default:
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d | %d | %s / %s | %.2f %% | %s | %s | %.2f | %.1f s | - |\n",
				res.target, load, num(float64(cs.rate)), num(float64(cs.calls)), num(float64(cs.registers)), cs.failed, 0,
				dur(cs.p50), dur(cs.p99), cs.retransPct(), dropsCell(cs), num(cs.goodput), cs.goodput/float64(cs.rate), cs.lastAt)
		}
		rows := append([]*step(nil), res.loads...)
		if res.avalanche != nil {
			rows = append(rows, res.avalanche)
		}
		for _, st := range rows {
			load := fmt.Sprintf("%gx C", st.mult)
			if st.kind == "avalanche" {
				load = "avalanche"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d | %d | %s / %s | %.2f %% | %s | %s | %.2f | %.1f s | %s |\n",
				res.target, load, offeredCell(st), num(float64(st.calls-st.notStarted)), num(float64(st.registers)), st.failed, st.unfinished,
				dur(st.p50), dur(st.p99), st.retransPct(), dropsCell(st), num(st.goodput), st.overC(), st.lastAt, mb(st.serverRSS()))
		}
	}
	fmt.Fprintf(&b, "\nlocsvc: 1 node, --sip-mode redirect, 3 memcached shards (-t 1), --replicas 2, --register-rate 0, overload control at its defaults%s. "+
		"Kamailio: kamailio-ref.cfg, usrloc db_mode 0, %d UDP children, %d MB shared memory. Server CPUs: %s%s; sipp CPUs: %s. Raw data: %s\n",
		extraFlags(c.locsvcFlags), c.kamChildren, c.kamShmMB, orNone(c.serverCPUs), r.quota.Describe(), orNone(c.sippCPUs), r.dir)
	return b.String()
}

// dropsCell is the datagrams dropped at the server's socket and at sipp's.
func dropsCell(st *step) string {
	return num(float64(st.serverDrops)) + " / " + num(float64(st.sippDrops))
}

func offeredCell(st *step) string {
	s := num(st.offered)
	if st.offered < 0.97*float64(st.rate) {
		s += fmt.Sprintf(" (asked %s)", num(float64(st.rate)))
	}
	return s
}

func extraFlags(f []string) string {
	if len(f) == 0 {
		return ""
	}
	return " and " + strings.Join(f, " ")
}

func orNone(s string) string {
	if s == "" {
		return "not pinned"
	}
	return s
}

// num prints a count or rate with thousands separators.
func num(v float64) string {
	s := fmt.Sprintf("%.0f", math.Round(v))
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// dur prints sipp's whole milliseconds, in seconds from 1 s on.
func dur(ms float64) string {
	switch {
	case ms < 1:
		return "<1 ms"
	case ms < 1000:
		return fmt.Sprintf("%.0f ms", ms)
	}
	return fmt.Sprintf("%.1f s", ms/1000)
}

func mb(bytes int64) string {
	if bytes <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MB", float64(bytes)/(1<<20))
}

// smokeCheck fails when the harness broke: a phase that did not run,
// sipp output that was not read, a step in which fewer than half the
// phones registered. It does not judge figures: under `make test`, beside
// every other test, a race-built node may well refuse or lose a few of
// the smoke's REGISTERs.
func smokeCheck(c config, results []*result) error {
	var errs []error
	if len(results) != len(c.targets) {
		errs = append(errs, fmt.Errorf("%d of %d targets measured", len(results), len(c.targets)))
	}
	for _, res := range results {
		if res.capacity == nil {
			errs = append(errs, fmt.Errorf("%s: capacity step failed: %s", res.target, res.note))
			continue
		}
		if len(res.loads) != len(c.loads) {
			errs = append(errs, fmt.Errorf("%s: %d of %d load steps ran", res.target, len(res.loads), len(c.loads)))
		}
		steps := append([]*step(nil), res.loads...)
		if res.avalanche == nil && c.avalanchePhones > 0 {
			errs = append(errs, fmt.Errorf("%s: no avalanche", res.target))
		} else if res.avalanche != nil {
			steps = append(steps, res.avalanche)
		}
		for _, st := range steps {
			switch {
			case st.ok == 0 || st.ok < (st.calls-st.notStarted)/2:
				errs = append(errs, fmt.Errorf("%s %s: %d of %d phones registered (%s)", st.target, st.label, st.ok, st.calls-st.notStarted, st.verdict))
			case st.notStarted > st.calls/10:
				errs = append(errs, fmt.Errorf("%s %s: sipp started only %d of %d phones", st.target, st.label, st.calls-st.notStarted, st.calls))
			case st.registers < st.calls-st.notStarted:
				errs = append(errs, fmt.Errorf("%s %s: %d REGISTERs counted for %d phones", st.target, st.label, st.registers, st.calls))
			case st.samples == 0 || st.lastAt <= 0:
				errs = append(errs, fmt.Errorf("%s %s: no response times", st.target, st.label))
			case st.serverRSS() <= 0:
				errs = append(errs, fmt.Errorf("%s %s: no peak RSS", st.target, st.label))
			}
		}
	}
	return errors.Join(errs...)
}

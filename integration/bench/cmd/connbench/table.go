package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// The goal, and the reference figures quoted beside it.
const (
	goalPerConn = 16 << 10
	refNote     = "goal: <= 16 KB per connection; reference: SIP-Router measured 4.5 KB per TCP connection and 61 KB more per TLS connection"
)

func (b *bench) table(res *result) string {
	c := b.c
	var sb strings.Builder
	title := fmt.Sprintf("%d WebSocket + %d TCP connections", c.ws, c.tcp)
	if c.smoke {
		title += " (smoke: measures nothing)"
	}
	fmt.Fprintf(&sb, "\n## connbench %s: %s\n\n", time.Now().UTC().Format(time.RFC3339), title)
	fmt.Fprintf(&sb, "One locsvc node, --sip-mode %s, embedded store, --register-rate 0; every client an RFC 5626 outbound UA "+
		"(+sip.instance, reg-id=1, Supported: outbound, path, Expires %d) on its own connection, keepalive (double CRLF) every %v "+
		"at evenly spread offsets. Clients on 127.0.0.2 and up, the server on 127.0.0.1; the load generator shares the machine "+
		"(%d cores). Memory read %v after each phase, %s. 1 KB = 1024 bytes.\n\n",
		c.mode, c.expires, c.keepalive, runtime.NumCPU(), c.settle,
		map[bool]string{true: "after a garbage collection", false: "without forcing a garbage collection (-pprof=false)"}[c.pprof])

	sb.WriteString("| phase | WS conns | TCP conns | VmRSS | Go heap in use | Go stacks | goroutines | connect + REGISTER |\n")
	sb.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	took := map[string]time.Duration{"ws": res.wsTime, "tcp": res.tcpTime}
	n := map[string]int{"ws": c.ws, "tcp": c.tcp, "idle": c.ws + c.tcp}
	phaseName := map[string]string{"empty": "server started", "ws": "+ WebSocket clients", "tcp": "+ TCP clients",
		"idle": "after the idle window"}
	for _, s := range res.samples {
		t := ""
		if d := took[s.phase]; d > 0 {
			t = fmt.Sprintf("%s (%.0f/s)", d.Round(10*time.Millisecond), float64(n[s.phase])/d.Seconds())
		}
		fmt.Fprintf(&sb, "| %s | %.0f | %.0f | %s | %s | %s | %.0f | %s |\n",
			phaseName[s.phase], s.wsConns, s.tcpConns, mb(float64(s.rss)), mb(s.heapInuse), mb(s.stackInuse), s.goroutines, t)
	}

	sb.WriteString("\nPer connection: a phase's growth over its connections; the last row is the growth from the empty server " +
		"to the end of the idle window over all connections. Within 16 KB judges the larger of VmRSS and Go heap + stacks " +
		"(VmRSS counts only the pages written so far, and keeps growing towards the heap's size under traffic).\n\n")
	sb.WriteString("| connection | VmRSS | Go heap in use | Go stacks | Go heap + stacks | goroutines | within 16 KB |\n")
	sb.WriteString("| --- | --- | --- | --- | --- | --- | --- |\n")
	for i := 1; i < len(res.samples); i++ {
		a, z := res.samples[i-1], res.samples[i]
		name := map[string]string{"ws": "WebSocket", "tcp": "TCP"}[z.phase]
		if z.phase == "idle" {
			a, name = res.samples[0], "all, after the idle window"
		}
		k := float64(n[z.phase])
		rss, heap, stacks := float64(z.rss-a.rss)/k, (z.heapInuse-a.heapInuse)/k, (z.stackInuse-a.stackInuse)/k
		within := "yes"
		if max(rss, heap+stacks) > goalPerConn {
			within = "no"
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %.2f | %s |\n", name, kb(rss), kb(heap), kb(stacks), kb(heap+stacks),
			(z.goroutines-a.goroutines)/k, within)
	}
	fmt.Fprintf(&sb, "\n%s.\n", refNote)

	if w := res.idle; w.dur > 0 {
		e := res.empty
		fmt.Fprintf(&sb, "\nKeepalives at idle (%v window, %d connections, no REGISTER traffic):\n\n", w.dur.Round(time.Second), c.ws+c.tcp)
		sb.WriteString("| keepalives sent | pongs | keepalives/s | server WebSocket Pings | server CPU | per keepalive | per keepalive or Ping | empty server CPU | load generator CPU |\n")
		sb.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
		fmt.Fprintf(&sb, "| %d | %d | %.0f | %d | %.2f %% of a core | %.1f µs | %.1f µs | %.2f %% | %.2f %% |\n",
			w.kaSent, w.pongs, float64(w.kaSent)/w.dur.Seconds(), w.wsPings, pct(w.serverCPU, w.dur), perEvent(w, e, w.kaSent),
			perEvent(w, e, w.kaSent+w.wsPings), pct(e.serverCPU, e.dur), pct(w.genCPU, w.dur))
		fmt.Fprintf(&sb, "\nPer keepalive: the server's CPU over the window, net of the empty server's rate, over the keepalives; "+
			"the next column counts the server's own WebSocket Pings (one per WebSocket connection every 30 s, answered by the clients' Pongs) as events too. "+
			"CPU is read in 10 ms ticks (/proc/PID/stat utime + stime).")
		if res.idleMissingPongs > 0 {
			fmt.Fprintf(&sb, " %d keepalives got no pong.", res.idleMissingPongs)
		}
		sb.WriteString("\n")
	}

	if len(res.steps) > 0 {
		fmt.Fprintf(&sb, "\nREGISTER refreshes while every connection is held (same Call-ID, CSeq + 1, over the client's own connection), "+
			"%v steps; sustained: >= 99 %% of the refreshes offered answered 200 within %v, achieved >= 97 %% of offered:\n\n", c.stepLen, maxLatency)
		sb.WriteString("| offered | sent | 200 | within " + maxLatency.String() + " | other answers | unanswered | achieved | p50 | p99 | server CPU per REGISTER | server / load generator CPU | verdict |\n")
		sb.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
		for _, s := range res.steps {
			fmt.Fprintf(&sb, "| %d/s | %d | %d | %.2f %% | %d | %d | %.0f/s | %.1f ms | %.1f ms | %.0f µs | %.2f / %.2f cores | %s |\n",
				s.rate, s.sent, s.ok, 100*float64(s.within)/float64(s.offered), s.other, s.unanswered, s.achieved(),
				msf(s.percentile(50)), msf(s.percentile(99)), s.cpuPerRegister(), s.cpu/s.wall.Seconds(), s.genCPU/s.wall.Seconds(), s.verdict)
		}
		fmt.Fprintf(&sb, "\nHighest sustained refresh rate: %s.\n", bestRate(res.steps, c.rates))
	}
	if res.failure != nil {
		fmt.Fprintf(&sb, "\nRUN FAILED: %v\n", res.failure)
	}
	fmt.Fprintf(&sb, "\nLoad generator VmRSS at the end: %s. Raw data: %s\n", mb(float64(res.genRSS)), b.dir)
	return sb.String()
}

// bestRate is the highest sustained rate, marked ">=" when even the last
// rate of the ladder was sustained.
func bestRate(steps []*step, rates []int) string {
	best := 0
	for _, s := range steps {
		if s.pass {
			best = s.rate
		}
	}
	switch {
	case best == 0:
		return fmt.Sprintf("none (not even %d/s)", steps[0].rate)
	case best == rates[len(rates)-1] && steps[len(steps)-1].pass:
		return fmt.Sprintf(">= %d/s (the ladder's last rate)", best)
	}
	return fmt.Sprintf("%d/s", best)
}

func (b *bench) writeCSVs(res *result) {
	var s strings.Builder
	s.WriteString("phase,unix_ms,ws_conns,tcp_conns,vm_rss_bytes,rss_anon_bytes,heap_inuse_bytes,stack_inuse_bytes,goroutines,cpu_ticks\n")
	for _, m := range res.samples {
		fmt.Fprintf(&s, "%s,%d,%.0f,%.0f,%d,%d,%.0f,%.0f,%.0f,%d\n", m.phase, m.at.UnixMilli(), m.wsConns, m.tcpConns,
			m.rss, m.rssAnon, m.heapInuse, m.stackInuse, m.goroutines, m.cpuTicks)
	}
	_ = os.WriteFile(filepath.Join(b.dir, "samples.csv"), []byte(s.String()), 0o644)

	s.Reset()
	s.WriteString("window,seconds,keepalives,pongs,server_ws_pings,server_cpu_s,generator_cpu_s\n")
	for _, w := range []struct {
		name string
		w    idleWindow
	}{{"empty", res.empty}, {"idle", res.idle}} {
		fmt.Fprintf(&s, "%s,%.2f,%d,%d,%d,%.2f,%.2f\n", w.name, w.w.dur.Seconds(), w.w.kaSent, w.w.pongs, w.w.wsPings, w.w.serverCPU, w.w.genCPU)
	}
	_ = os.WriteFile(filepath.Join(b.dir, "idle.csv"), []byte(s.String()), 0o644)

	s.Reset()
	s.WriteString(stepCSVHeader + "\n")
	for _, st := range res.steps {
		s.WriteString(st.csv(b.c.stepLen) + "\n")
	}
	_ = os.WriteFile(filepath.Join(b.dir, "steps.csv"), []byte(s.String()), 0o644)
}

func pct(cpu float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return 100 * cpu / d.Seconds()
}

func mb(v float64) string { return fmt.Sprintf("%.1f MB", v/(1<<20)) }
func kb(v float64) string { return fmt.Sprintf("%.1f KB", v/(1<<10)) }

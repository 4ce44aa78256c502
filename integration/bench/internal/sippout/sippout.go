// Package sippout reads what sipp writes during a benchmark step: the
// statistics of -trace_stat, the response times of -trace_rtt, the
// per-message counts of -trace_counts, and the kernel's count of UDP
// datagrams dropped for a full receive buffer. sipbench, overbench and
// attachbench share it.
package sippout

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Row is one row of a sipp CSV, by column name: numbers, and dates as
// seconds since the epoch (StartTime, CurrentTime); cells that are
// neither (durations as text) are left out.
type Row map[string]float64

// ReadStat is the last row of a -trace_stat CSV: the counters at the end
// of the run. It fails unless the counters every benchmark reads are
// there.
func ReadStat(path string) (Row, error) {
	rows, err := ReadStatRows(path)
	if err != nil {
		return nil, err
	}
	last := rows[len(rows)-1]
	for _, k := range []string{"SuccessfulCall(C)", "FailedCall(C)", "Retransmissions(C)", "CallRate(C)"} {
		if _, ok := last[k]; !ok {
			return nil, fmt.Errorf("%s: no column %s", path, k)
		}
	}
	return last, nil
}

// ReadStatRows is every row of a -trace_stat CSV (one per -fd period,
// and a last one at the end).
func ReadStatRows(path string) ([]Row, error) {
	return readCSV(path)
}

// ReadCounts is the last row of a -trace_counts CSV: per message of the
// scenario, how often it was sent, retransmitted, received, timed out
// ("1_REGISTER_Sent", "1_REGISTER_Retrans", "2_503_Recv", ...; the
// prefix is the message's index in the scenario).
func ReadCounts(path string) (Row, error) {
	rows, err := readCSV(path)
	if err != nil {
		return nil, err
	}
	return rows[len(rows)-1], nil
}

func readCSV(path string) ([]Row, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		return nil, fmt.Errorf("%s: no data rows", path)
	}
	head := strings.Split(lines[0], ";")
	var rows []Row
	for _, line := range lines[1:] {
		cells := strings.Split(line, ";")
		r := Row{}
		for i, h := range head {
			if i >= len(cells) {
				continue
			}
			// A date cell is "2026-12-07<TAB>03:52:08.041575<TAB>1796615528.041575":
			// its last field is the time in seconds since the epoch.
			c := cells[i]
			if j := strings.LastIndexByte(c, '\t'); j >= 0 {
				c = c[j+1:]
			}
			if v, err := strconv.ParseFloat(strings.TrimSpace(c), 64); err == nil {
				r[strings.TrimSpace(h)] = v
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// RTT is what the -trace_rtt files of a step hold.
type RTT struct {
	Sorted []float64 // every response time, ms, ascending
	// First and Last are when the first and the last measured answer
	// arrived, and FirstStart when the earliest measured exchange began
	// (an answer's time less its response time); ms since sipp started.
	First, Last, FirstStart float64
}

// Span is the time from the first measured answer to the last.
func (r RTT) Span() float64 { return r.Last - r.First }

// ReadRTT reads sipp's *_rtt.csv files in dir ("Date_ms;response_time_ms;rtd_no").
// sipp writes them in batches of -rtt_freq and drops the last partial
// batch (see RttFreq).
func ReadRTT(dir string) (RTT, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "*_rtt.csv"))
	r := RTT{First: math.Inf(1), Last: math.Inf(-1), FirstStart: math.Inf(1)}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return RTT{}, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			parts := strings.Split(sc.Text(), ";")
			if len(parts) < 2 {
				continue
			}
			at, err1 := strconv.ParseFloat(parts[0], 64)
			rt, err2 := strconv.ParseFloat(parts[1], 64)
			if err1 != nil || err2 != nil {
				continue // header
			}
			r.Sorted = append(r.Sorted, rt)
			r.First, r.Last = math.Min(r.First, at), math.Max(r.Last, at)
			r.FirstStart = math.Min(r.FirstStart, at-rt)
		}
		fh.Close()
	}
	sort.Float64s(r.Sorted)
	if len(r.Sorted) == 0 {
		return RTT{}, nil
	}
	return r, nil
}

// RttFreq is how many response times sipp buffers before it writes them:
// sipp drops a last partial batch, so it must divide the number of calls.
func RttFreq(calls int) int {
	for f := min(calls, 1000); f > 1; f-- {
		if calls%f == 0 {
			return f
		}
	}
	return 1
}

// Percentile of sorted values, nearest rank.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// RcvbufErrors is the kernel's UDP RcvbufErrors counter (all sockets).
func RcvbufErrors() int64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	var head []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if head == nil {
			head = f
			continue
		}
		if i := slices.Index(head, "RcvbufErrors"); i > 0 && i < len(f) {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			return v
		}
	}
	return 0
}

// UDPDrops is, for each of ports, the datagrams the kernel dropped
// because the receive queue of a UDP socket bound to that local port was
// full (the drops column of /proc/net/udp and udp6, summed over the
// sockets on the port). It tells a server that fell behind its socket
// from a sipp that fell behind its own, which RcvbufErrors, a count for
// the whole machine, does not. A socket closed is no longer listed:
// read it while the sockets are open.
func UDPDrops(ports ...int) map[int]int64 {
	out := make(map[int]int64, len(ports))
	for _, file := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for k, v := range parseUDPDrops(string(b), ports) {
			out[k] += v
		}
	}
	return out
}

func parseUDPDrops(table string, ports []int) map[int]int64 {
	out := map[int]int64{}
	lines := strings.Split(table, "\n")
	for _, line := range lines[min(1, len(lines)):] {
		f := strings.Fields(line)
		if len(f) < 13 {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		port, err := strconv.ParseInt(hexPort, 16, 32)
		if err != nil || !slices.Contains(ports, int(port)) {
			continue
		}
		drops, err := strconv.ParseInt(f[len(f)-1], 10, 64)
		if err == nil {
			out[int(port)] += drops
		}
	}
	return out
}

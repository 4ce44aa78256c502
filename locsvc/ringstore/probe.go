package ringstore

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Probe checks that the memcached at addr answers and returns its epoch:
// an identity of the running process (pid and start time, from `stats`).
// A memcached that restarts, and so comes back empty, gets a new epoch even
// if it was back before any probe saw it down; gossiping the epoch makes
// every node repair it (see ring.Config.HealthCheck).
func Probe(ctx context.Context, addr string, timeout time.Duration) (uint64, error) {
	st, err := ServerStats(ctx, addr, "", timeout)
	if err != nil {
		return 0, err
	}
	pid, now, uptime := st["pid"], st["time"], st["uptime"]
	if pid == 0 || now < uptime {
		return 0, fmt.Errorf("memcached %s: stats without pid/time/uptime", addr)
	}
	return pid<<32 | (now-uptime)&0xffffffff, nil
}

// ServerStats returns the numeric counters of memcached's `stats` at addr
// (curr_items, bytes, pid, ...), or of `stats <group>` (e.g. "slabs"), on
// a connection of its own.
func ServerStats(ctx context.Context, addr, group string, timeout time.Duration) (map[string]uint64, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// The sooner of the two bounds; a cancelled ctx ends the wait at once.
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	cmd := "stats\r\n"
	if group != "" {
		cmd = "stats " + group + "\r\n"
	}
	if _, err := conn.Write([]byte(cmd)); err != nil {
		return nil, err
	}
	out := make(map[string]uint64)
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		line := sc.Text()
		if line == "END" {
			return out, nil
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "STAT" {
			if strings.Contains(line, "ERROR") {
				return nil, fmt.Errorf("memcached %s: %s", addr, line)
			}
			continue
		}
		if v, err := strconv.ParseUint(f[2], 10, 64); err == nil {
			out[f[1]] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("memcached %s: connection closed before END", addr)
}

package ringstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Probe checks that the memcached at addr answers and returns its epoch:
// an identity of the running process (pid and start time, from `stats`).
// A memcached that restarts, and so comes back empty, gets a new epoch even
// if it was back before any probe saw it down; gossiping the epoch makes
// every node repair it (see ring.Config.HealthCheck). dial is the node's
// (nil: plain TCP), so the probe fails exactly when the store could not
// talk to the shard either. The error names the shard, and keeps what
// tells a TLS mismatch apart: ErrNoAnswer (the shard closed the connection
// unanswered, as a TLS-only shard does to a plain client), the TLS alert
// of a shard that refused the client certificate, crypto/tls's errors.
func Probe(ctx context.Context, dial DialFunc, addr string, timeout time.Duration) (uint64, error) {
	st, err := ServerStats(ctx, dial, addr, "", timeout)
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
// a connection of its own opened by dial (nil: plain TCP). Errors name
// the shard.
func ServerStats(ctx context.Context, dial DialFunc, addr, group string, timeout time.Duration) (map[string]uint64, error) {
	st, err := serverStats(ctx, dialFor(dial), addr, group, timeout)
	if err != nil {
		return nil, fmt.Errorf("memcached %s: %w", addr, err)
	}
	return st, nil
}

func serverStats(ctx context.Context, dial DialFunc, addr, group string, timeout time.Duration) (map[string]uint64, error) {
	// The sooner of the two bounds, for the dial, the handshake and the
	// answer; a cancelled ctx ends the wait at once.
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	cmd := "stats\r\n"
	if group != "" {
		cmd = "stats " + group + "\r\n"
	}
	if _, err := conn.Write([]byte(cmd)); err != nil {
		return nil, unanswered(conn, err)
	}
	out := make(map[string]uint64)
	sc := bufio.NewScanner(conn)
	answered := false
	for sc.Scan() {
		answered = true
		line := sc.Text()
		if line == "END" {
			return out, nil
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "STAT" {
			if strings.Contains(line, "ERROR") {
				return nil, fmt.Errorf("answered %s", line)
			}
			continue
		}
		if v, err := strconv.ParseUint(f[2], 10, 64); err == nil {
			out[f[1]] = v
		}
	}
	err = sc.Err()
	switch {
	case !answered && err == nil:
		return nil, unanswered(conn, io.EOF)
	case !answered:
		return nil, unanswered(conn, err)
	case err != nil:
		return nil, err
	}
	return nil, errors.New("connection closed before END")
}

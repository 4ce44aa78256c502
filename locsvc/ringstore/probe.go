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
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte("stats\r\n")); err != nil {
		return 0, err
	}
	var pid, now, uptime uint64
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		line := sc.Text()
		if line == "END" {
			if pid == 0 || now < uptime {
				return 0, fmt.Errorf("memcached %s: stats without pid/time/uptime", addr)
			}
			return pid<<32 | (now-uptime)&0xffffffff, nil
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "STAT" {
			if strings.Contains(line, "ERROR") {
				return 0, fmt.Errorf("memcached %s: %s", addr, line)
			}
			continue
		}
		v, _ := strconv.ParseUint(f[2], 10, 64)
		switch f[1] {
		case "pid":
			pid = v
		case "time":
			now = v
		case "uptime":
			uptime = v
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("memcached %s: connection closed before END", addr)
}

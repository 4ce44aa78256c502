package integration

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// Memcached is a memcached process on a loopback port. Restart brings it
// back empty on the same port, as after a crash.
type Memcached struct {
	*Proc
	Addr string
	t    testing.TB
}

// StartMemcached starts one memcached (TCP only, 64 MiB, one thread) and
// waits until it answers.
func StartMemcached(t testing.TB) *Memcached {
	t.Helper()
	m := &Memcached{Addr: FreeAddr(t), t: t}
	m.start()
	return m
}

func (m *Memcached) start() {
	m.t.Helper()
	_, port, _ := net.SplitHostPort(m.Addr)
	// memcached refuses to run as root without -u; CI runs as root.
	m.Proc = Start(m.t, "memcached "+m.Addr, "memcached", nil,
		"-u", "nobody", "-l", "127.0.0.1", "-p", port, "-U", "0", "-m", "64", "-t", "1")
	WaitFor(m.t, 10*time.Second, "memcached at "+m.Addr, func() bool {
		return memcache.New(m.Addr).Ping() == nil
	})
}

// Restart kills (-9) and starts memcached again, empty, on the same port.
func (m *Memcached) Restart() {
	m.t.Helper()
	m.Kill()
	m.start()
}

// Client is a gomemcache client for this one server.
func (m *Memcached) Client() *memcache.Client {
	c := memcache.New(m.Addr)
	c.Timeout = 2 * time.Second
	c.MaxIdleConns = 8
	return c
}

// Has reports which of keys this server holds, reading it directly.
func (m *Memcached) Has(keys []string) (map[string]bool, error) {
	c := m.Client()
	out := make(map[string]bool, len(keys))
	for i := 0; i < len(keys); i += 100 {
		items, err := c.GetMulti(keys[i:min(i+100, len(keys))])
		if err != nil {
			return nil, fmt.Errorf("memcached %s: %w", m.Addr, err)
		}
		for k := range items {
			out[k] = true
		}
	}
	return out, nil
}

// Stats returns memcached's "stats" (or "stats <group>", e.g. "slabs")
// counters by name.
func (m *Memcached) Stats(group string) (map[string]string, error) {
	conn, err := net.DialTimeout("tcp", m.Addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	cmd := "stats\r\n"
	if group != "" {
		cmd = "stats " + group + "\r\n"
	}
	if _, err := conn.Write([]byte(cmd)); err != nil {
		return nil, err
	}
	out := make(map[string]string)
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		line := sc.Text()
		if line == "END" {
			return out, nil
		}
		if f := strings.Fields(line); len(f) == 3 && f[0] == "STAT" {
			out[f[1]] = f[2]
		} else {
			return nil, fmt.Errorf("memcached %s: unexpected %q", m.Addr, line)
		}
	}
	return nil, fmt.Errorf("memcached %s: stats: %v", m.Addr, sc.Err())
}

// StatInt is one numeric counter of Stats(group); a missing or unreadable
// one fails the test.
func (m *Memcached) StatInt(t testing.TB, group, name string) int64 {
	t.Helper()
	st, err := m.Stats(group)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(st[name], 10, 64)
	if err != nil {
		t.Fatalf("memcached %s: stat %q = %q", m.Addr, name, st[name])
	}
	return n
}

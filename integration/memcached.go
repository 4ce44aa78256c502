package integration

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/locsvc/locsvc/internal/testcerts"
	"github.com/locsvc/locsvc/locsvc/ringstore"
)

// Memcached is a memcached process on a loopback port. Restart brings it
// back empty on the same port, as after a crash.
type Memcached struct {
	*Proc
	Addr string
	// TLS, when set, makes it TLS-only (-Z) with TLS.ServerCert, requiring
	// client certificates signed by TLS.CAFile (ssl_verify_mode=2), without
	// flush_all (-F): the shard docs/security.md recommends. The test's
	// own clients (Client, Has, Stats) then present TLS.ClientCert.
	TLS  *testcerts.Certs
	t    testing.TB
	host *Host // nil: on loopback
}

// StartMemcached starts one memcached inside the host, on its address
// and port 11211 (plain TCP); the test's clients reach it through the
// host.
func (h *Host) StartMemcached(t testing.TB) *Memcached {
	t.Helper()
	m := &Memcached{Addr: h.HostPort(11211), t: t, host: h}
	if !m.start() {
		t.Fatalf("memcached on %s exited at start:\n%s", h.Name, m.Output())
	}
	return m
}

// StartMemcached starts one memcached (TCP only, 64 MiB, one thread) and
// waits until it answers.
func StartMemcached(t testing.TB) *Memcached {
	t.Helper()
	return startMemcached(t, nil)
}

// StartMemcachedTLS starts one memcached serving TLS only, with the
// server certificate of certs, and requiring a client certificate signed
// by its CA.
func StartMemcachedTLS(t testing.TB, certs *testcerts.Certs) *Memcached {
	t.Helper()
	return startMemcached(t, certs)
}

func startMemcached(t testing.TB, certs *testcerts.Certs) *Memcached {
	t.Helper()
	m := &Memcached{Addr: FreeAddr(t), TLS: certs, t: t}
	// The free port may be taken by another test's process before
	// memcached binds it: then it exits, and starts again on another.
	for attempt := 1; !m.start(); attempt++ {
		if attempt == 3 {
			t.Fatalf("memcached exited at start %d times:\n%s", attempt, m.Output())
		}
		m.Addr = FreeAddr(t)
	}
	return m
}

// start reports false when memcached exited before it answered.
func (m *Memcached) start() bool {
	m.t.Helper()
	host, port, _ := net.SplitHostPort(m.Addr)
	// memcached refuses to run as root without -u; CI runs as root. It
	// reads its certificate files before it drops to nobody.
	args := []string{"-u", "nobody", "-l", host, "-p", port, "-U", "0", "-m", "64", "-t", "1"}
	if m.TLS != nil {
		args = append(args, "-F", "-Z", "-o", "ssl_chain_cert="+m.TLS.ServerCert+",ssl_key="+m.TLS.ServerKey+
			",ssl_ca_cert="+m.TLS.CAFile+",ssl_verify_mode=2")
	}
	if m.host != nil {
		m.Proc = m.host.Start(m.t, "memcached "+m.Addr, "memcached", nil, args...)
	} else {
		m.Proc = Start(m.t, "memcached "+m.Addr, "memcached", nil, args...)
	}
	WaitFor(m.t, 10*time.Second, "memcached at "+m.Addr, func() bool {
		return m.Exited() || m.Client().Ping() == nil
	})
	return !m.Exited()
}

// Restart kills (-9) and starts memcached again, empty, on the same port.
func (m *Memcached) Restart() {
	m.t.Helper()
	m.Kill()
	if !m.start() {
		m.t.Fatalf("memcached %s exited at restart:\n%s", m.Addr, m.Output())
	}
}

// Dial is how the test's own clients reach the server: TLS with the
// client certificate for a TLS server, plain TCP otherwise.
func (m *Memcached) Dial() ringstore.DialFunc {
	if m.host != nil {
		return m.host.DialContext
	}
	if m.TLS == nil {
		return ringstore.Dialer(nil)
	}
	conf := m.TLS.ClientTLS(m.t, true)
	return ringstore.Dialer(func() *tls.Config { return conf })
}

// Client is a gomemcache client for this one server.
func (m *Memcached) Client() *memcache.Client {
	c := memcache.New(m.Addr)
	c.Timeout = 2 * time.Second
	c.MaxIdleConns = 8
	c.DialContext = m.Dial()
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
func (m *Memcached) Stats(group string) (map[string]uint64, error) {
	return ringstore.ServerStats(context.Background(), m.Dial(), m.Addr, group, 5*time.Second)
}

// StatInt is one counter of Stats(group); a missing one fails the test.
func (m *Memcached) StatInt(t testing.TB, group, name string) int64 {
	t.Helper()
	st, err := m.Stats(group)
	if err != nil {
		t.Fatal(err)
	}
	n, ok := st[name]
	if !ok {
		t.Fatalf("memcached %s: no stat %q", m.Addr, name)
	}
	return int64(n)
}

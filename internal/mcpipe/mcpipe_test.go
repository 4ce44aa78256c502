package mcpipe_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/locsvc/locsvc/integration"
	"github.com/locsvc/locsvc/internal/mcpipe"
)

// ctx is for calls whose context plays no part in the test.
var ctx = context.Background()

func newClient(t testing.TB, addr string, cfg mcpipe.Config) *mcpipe.Client {
	t.Helper()
	c := mcpipe.New(addr, cfg)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Every command and every answer the store relies on, checked against a
// real memcached and, for what was stored, against another client.
func TestCommands(t *testing.T) {
	m := integration.StartMemcached(t)
	c := newClient(t, m.Addr, mcpipe.Config{Timeout: 2 * time.Second})
	other := m.Client()

	if _, err := c.Get(ctx, "k"); !errors.Is(err, mcpipe.ErrCacheMiss) {
		t.Fatalf("get of a missing key: %v, want ErrCacheMiss", err)
	}
	// Values that would confuse a line-based reader: CRLF and "END" inside,
	// empty, and larger than the read buffer.
	values := [][]byte{[]byte("a\r\nEND\r\nVALUE x 0 1 1\r\n"), {}, bytes.Repeat([]byte{0, '\n', 0xff}, 100<<10)}
	for i, v := range values {
		key := fmt.Sprintf("k%d", i)
		if err := c.Add(ctx, &mcpipe.Item{Key: key, Value: v, Flags: 7, Expiration: 60}); err != nil {
			t.Fatalf("add %s: %v", key, err)
		}
		got, err := other.Get(key)
		if err != nil || !bytes.Equal(got.Value, v) || got.Flags != 7 {
			t.Fatalf("stored %s reads back as %v, %v", key, got, err)
		}
		it, err := c.Get(ctx, key)
		if err != nil || !bytes.Equal(it.Value, v) || it.Flags != 7 || it.Key != key || it.CAS == 0 {
			t.Fatalf("get %s = %+v, %v", key, it, err)
		}
	}
	if err := c.Add(ctx, &mcpipe.Item{Key: "k0", Value: []byte("x")}); !errors.Is(err, mcpipe.ErrNotStored) {
		t.Fatalf("add of a present key: %v, want ErrNotStored", err)
	}

	it, err := c.Get(ctx, "k0")
	if err != nil {
		t.Fatal(err)
	}
	next := *it
	next.Value = []byte("second")
	if err := c.CompareAndSwap(ctx, &next); err != nil {
		t.Fatalf("cas with a fresh token: %v", err)
	}
	if err := c.CompareAndSwap(ctx, &next); !errors.Is(err, mcpipe.ErrCASConflict) {
		t.Fatalf("cas with a spent token: %v, want ErrCASConflict", err)
	}
	if err := other.Delete("k0"); err != nil {
		t.Fatal(err)
	}
	if err := c.CompareAndSwap(ctx, &next); !errors.Is(err, mcpipe.ErrCacheMiss) {
		t.Fatalf("cas of a deleted key: %v, want ErrCacheMiss", err)
	}

	items, err := c.GetMulti(ctx, []string{"k1", "nope", "k2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || !bytes.Equal(items["k2"].Value, values[2]) || items["k1"] == nil || items["nope"] != nil {
		t.Fatalf("get of k1, nope, k2 returned keys %v", keysOf(items))
	}
}

func keysOf(m map[string]*mcpipe.Item) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// A bad key is refused before anything reaches the server.
func TestMalformedKeys(t *testing.T) {
	m := integration.StartMemcached(t)
	c := newClient(t, m.Addr, mcpipe.Config{})
	for _, key := range []string{"", "a b", "a\r\nflush_all", strings.Repeat("k", 251), "tab\there", "del\x7f"} {
		if _, err := c.Get(ctx, key); !errors.Is(err, mcpipe.ErrMalformedKey) {
			t.Errorf("get %q: %v, want ErrMalformedKey", key, err)
		}
		if err := c.Add(ctx, &mcpipe.Item{Key: key, Value: []byte("v")}); !errors.Is(err, mcpipe.ErrMalformedKey) {
			t.Errorf("add %q: %v, want ErrMalformedKey", key, err)
		}
		if _, err := c.GetMulti(ctx, []string{"fine", key}); !errors.Is(err, mcpipe.ErrMalformedKey) {
			t.Errorf("get-multi with %q: %v, want ErrMalformedKey", key, err)
		}
	}
	if n := m.StatInt(t, "", "cmd_get") + m.StatInt(t, "", "cmd_set"); n != 0 {
		t.Errorf("memcached saw %d commands, want none", n)
	}
}

// Many callers share the client's few connections and each gets its own
// answer back: an answer matched to the wrong caller shows up as a value
// that is not the caller's.
func TestManyCallersFewConnections(t *testing.T) {
	m := integration.StartMemcached(t)
	const conns = 2
	c := newClient(t, m.Addr, mcpipe.Config{Conns: conns, Timeout: 5 * time.Second})
	before := m.StatInt(t, "", "total_connections")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				key := fmt.Sprintf("g%d-%d", g, i)
				val := []byte(key + strings.Repeat("v", i))
				if err := c.Add(ctx, &mcpipe.Item{Key: key, Value: val}); err != nil {
					errs <- fmt.Errorf("add %s: %w", key, err)
					return
				}
				it, err := c.Get(ctx, key)
				if err != nil || !bytes.Equal(it.Value, val) {
					errs <- fmt.Errorf("get %s = %+v, %v", key, it, err)
					return
				}
				next := *it
				next.Value = append(val, '!')
				if err := c.CompareAndSwap(ctx, &next); err != nil {
					errs <- fmt.Errorf("cas %s: %w", key, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Each StatInt opens one connection of its own.
	if opened := m.StatInt(t, "", "total_connections") - before - 1; opened > conns {
		t.Errorf("64 callers opened %d connections, want at most %d", opened, conns)
	}
}

// After memcached restarts, the first call on the old connection is sent
// again on a new one instead of failing.
func TestServerRestart(t *testing.T) {
	m := integration.StartMemcached(t)
	c := newClient(t, m.Addr, mcpipe.Config{Conns: 1, Timeout: 2 * time.Second})
	if err := c.Add(ctx, &mcpipe.Item{Key: "a", Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	m.Restart()
	if _, err := c.Get(ctx, "a"); !errors.Is(err, mcpipe.ErrCacheMiss) {
		t.Fatalf("first get after a restart: %v, want a miss from the new server", err)
	}
	m.Kill()
	start := time.Now()
	_, err := c.Get(ctx, "a")
	if err == nil || errors.Is(err, mcpipe.ErrCacheMiss) {
		t.Fatalf("get from a dead server: %v, want a connection error", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a refused connection took %v to report", d)
	}
}

// A server that accepts but never answers costs a caller one timeout,
// reported as a net.Error timeout, and the silent connection is dropped.
func TestSilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- nc
		}
	}()
	defer func() {
		close(accepted)
		for nc := range accepted {
			nc.Close()
		}
	}()
	c := newClient(t, ln.Addr().String(), mcpipe.Config{Conns: 1, Timeout: 200 * time.Millisecond})
	start := time.Now()
	_, err = c.Get(ctx, "a")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("get from a silent server: %v, want a timeout", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > time.Second {
		t.Errorf("timed out after %v, want about 200ms", d)
	}
	// The reader's deadline closes the connection: the server sees EOF.
	nc := <-accepted
	_ = nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	for {
		if _, err := nc.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the client kept a connection to a silent server open")
			}
			break
		}
	}
}

// SERVER_ERROR answers one command; the connection stays in step for the
// next.
func TestServerErrorKeepsConnection(t *testing.T) {
	m := integration.StartMemcached(t)
	c := newClient(t, m.Addr, mcpipe.Config{Conns: 1, Timeout: 2 * time.Second})
	before := m.StatInt(t, "", "total_connections")
	big := make([]byte, 2<<20) // past memcached's 1 MiB item limit
	var se *mcpipe.ServerError
	if err := c.Add(ctx, &mcpipe.Item{Key: "big", Value: big}); !errors.As(err, &se) {
		t.Fatalf("add of 2 MiB: %v, want a ServerError", err)
	}
	if err := c.Add(ctx, &mcpipe.Item{Key: "small", Value: []byte("ok")}); err != nil {
		t.Fatal(err)
	}
	if it, err := c.Get(ctx, "small"); err != nil || string(it.Value) != "ok" {
		t.Fatalf("get after a SERVER_ERROR = %v, %v", it, err)
	}
	// Each StatInt opens one connection of its own.
	if opened := m.StatInt(t, "", "total_connections") - before - 1; opened != 1 {
		t.Errorf("the client opened %d connections, want 1: the SERVER_ERROR cost it its connection", opened)
	}
}

func TestClose(t *testing.T) {
	m := integration.StartMemcached(t)
	c := mcpipe.New(m.Addr, mcpipe.Config{})
	if err := c.Add(ctx, &mcpipe.Item{Key: "a", Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if _, err := c.Get(ctx, "a"); !errors.Is(err, mcpipe.ErrClosed) {
		t.Fatalf("get after Close: %v, want ErrClosed", err)
	}
}

// BenchmarkGet compares one key read through this client and through
// gomemcache, at 8 callers per -cpu. Beside the wall time per call it
// reports the CPU per call of this process (client-µs/op) and of
// memcached (server-µs/op): on a box where both share the cores, CPU per
// call is what bounds the rate.
func BenchmarkGet(b *testing.B) {
	m := integration.StartMemcached(b)
	c := newClient(b, m.Addr, mcpipe.Config{})
	if err := c.Add(ctx, &mcpipe.Item{Key: "k", Value: bytes.Repeat([]byte("v"), 200)}); err != nil {
		b.Fatal(err)
	}
	gm := memcache.New(m.Addr)
	gm.MaxIdleConns = 64
	for _, tc := range []struct {
		name string
		get  func(string) error
	}{
		{"mcpipe", func(k string) error { _, err := c.Get(ctx, k); return err }},
		{"gomemcache", func(k string) error { _, err := gm.Get(k); return err }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cmds0, writes0 := c.Stats().Commands, c.Stats().Writes
			client0, server0 := cpuTime(b), serverCPU(b, m)
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := tc.get("k"); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64((cpuTime(b)-client0).Microseconds())/float64(b.N), "client-µs/op")
			b.ReportMetric(float64((serverCPU(b, m)-server0).Microseconds())/float64(b.N), "server-µs/op")
			if tc.name == "mcpipe" {
				cmds, writes := c.Stats().Commands-cmds0, c.Stats().Writes-writes0
				b.ReportMetric(float64(cmds)/float64(max(writes, 1)), "cmds/write")
			}
		})
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU is memcached's CPU time so far, from /proc (10 ms ticks).
func serverCPU(b *testing.B, m *integration.Memcached) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", m.PID()))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the parenthesised command name; utime and stime are
	// the 14th and 15th of the whole line.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

package mcpipe_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/locsvc/locsvc/integration"
	"github.com/locsvc/locsvc/internal/mcpipe"
)

// A context deadline sooner than Timeout bounds the call, and the error
// says the context's deadline passed, not that the server is slow.
func TestContextDeadlineBeforeTimeout(t *testing.T) {
	addr, _ := integration.SilentServer(t)
	c := newClient(t, addr, mcpipe.Config{Conns: 1, Timeout: 5 * time.Second})
	for _, tc := range []struct {
		name string
		call func(context.Context) error
	}{
		{"get", func(ctx context.Context) error { _, err := c.Get(ctx, "a"); return err }},
		{"get-multi", func(ctx context.Context) error { _, err := c.GetMulti(ctx, []string{"a", "b"}); return err }},
		{"add", func(ctx context.Context) error { return c.Add(ctx, &mcpipe.Item{Key: "a", Value: []byte("1")}) }},
		{"cas", func(ctx context.Context) error {
			return c.CompareAndSwap(ctx, &mcpipe.Item{Key: "a", Value: []byte("1"), CAS: 7})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := tc.call(ctx)
			d := time.Since(start)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%v, want context.DeadlineExceeded", err)
			}
			if d > 150*time.Millisecond {
				t.Errorf("returned after %v, the context allowed 100ms", d)
			}
		})
	}
}

// When Timeout is the sooner bound, its expiry is the client's own timeout
// error, as without a context deadline.
func TestTimeoutBeforeContextDeadline(t *testing.T) {
	addr, _ := integration.SilentServer(t)
	c := newClient(t, addr, mcpipe.Config{Conns: 1, Timeout: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Get(ctx, "a")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v, want the client's timeout", err)
	}
}

// Cancelling the context ends the wait at once with context.Canceled; a
// context already done sends nothing.
func TestContextCancelled(t *testing.T) {
	addr, received := integration.SilentServer(t)
	c := newClient(t, addr, mcpipe.Config{Conns: 1, Timeout: 5 * time.Second})

	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Get(done, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("get with a cancelled context: %v, want context.Canceled", err)
	}
	if err := c.Add(done, &mcpipe.Item{Key: "a", Value: []byte("1")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("add with a cancelled context: %v, want context.Canceled", err)
	}
	time.Sleep(20 * time.Millisecond)
	if n := received(); n != 0 {
		t.Errorf("calls with a cancelled context sent %d bytes", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Get(ctx, "a")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("get cancelled while waiting: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 150*time.Millisecond {
		t.Errorf("returned %v after the call began, cancelled at 50ms", d)
	}
}

// Callers that give up at random points of their calls leave the
// connections in step: every answer that arrives is the caller's own.
func TestAbandonedCallsKeepConnectionsInStep(t *testing.T) {
	m := integration.StartMemcached(t)
	c := newClient(t, m.Addr, mcpipe.Config{Conns: 2, Timeout: 2 * time.Second})
	const callers, rounds = 16, 300
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered, gaveUp := 0, 0
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("k%d", g)
			want := fmt.Sprintf("v%d", g)
			if err := c.Add(ctx, &mcpipe.Item{Key: key, Value: []byte(want)}); err != nil {
				t.Error(err)
				return
			}
			for i := range rounds {
				cctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%40)*25*time.Microsecond)
				it, err := c.Get(cctx, key)
				cancel()
				mu.Lock()
				if err == nil {
					answered++
				} else {
					gaveUp++
				}
				mu.Unlock()
				switch {
				case err == nil && string(it.Value) != want:
					t.Errorf("caller %d read %q, want %q: the stream is out of step", g, it.Value, want)
					return
				case err != nil && !errors.Is(err, context.DeadlineExceeded):
					t.Errorf("caller %d: %v", g, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d calls answered, %d given up", answered, gaveUp)
	if answered == 0 || gaveUp == 0 {
		t.Fatalf("%d calls answered and %d given up: the test needs both", answered, gaveUp)
	}
	for g := range callers {
		it, err := c.Get(ctx, fmt.Sprintf("k%d", g))
		if err != nil || string(it.Value) != fmt.Sprintf("v%d", g) {
			t.Fatalf("after the abandoned calls, k%d = %v, %v", g, it, err)
		}
	}
}

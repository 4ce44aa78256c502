package mcpipe_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/locsvc/locsvc/integration"
	"github.com/locsvc/locsvc/internal/mcpipe"
	"github.com/locsvc/locsvc/internal/testcerts"
)

// Config.Dial opens every connection, within the call's bounds: over it
// the client talks to a TLS-only memcached (client certificate required).
// Without it, that server closes the connection unanswered, and the error
// says so.
func TestDialTLS(t *testing.T) {
	m := integration.StartMemcachedTLS(t, testcerts.Generate(t))
	var dials atomic.Int32
	tlsDial := m.Dial()
	c := newClient(t, m.Addr, mcpipe.Config{Conns: 1, Timeout: 2 * time.Second,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > 2*time.Second {
				t.Errorf("dial context deadline %v (set: %v), want at most the timeout away", dl, ok)
			}
			return tlsDial(ctx, network, addr)
		}})
	if err := c.Add(ctx, &mcpipe.Item{Key: "k", Value: []byte("over TLS")}); err != nil {
		t.Fatalf("add over TLS: %v", err)
	}
	it, err := c.Get(ctx, "k")
	if err != nil || string(it.Value) != "over TLS" {
		t.Fatalf("get over TLS = %v, %v", it, err)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d dials for one connection", n)
	}

	plain := newClient(t, m.Addr, mcpipe.Config{Timeout: 2 * time.Second})
	_, err = plain.Get(ctx, "k")
	if !errors.Is(err, mcpipe.ErrNoAnswer) || !strings.Contains(err.Error(), m.Addr) || !strings.Contains(err.Error(), "TLS-only") {
		t.Fatalf("plain client to a TLS-only server: %v, want ErrNoAnswer naming the server and TLS", err)
	}
}

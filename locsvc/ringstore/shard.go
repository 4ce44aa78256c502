package ringstore

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// shardClient talks to one memcached server and remembers whether it is
// failing, so callers skip a dead shard instead of waiting on it for every
// request (mcrouter's TKO, in small).
type shardClient struct {
	addr    string
	timeout time.Duration
	idle    int
	mcp     atomic.Pointer[memcache.Client]
	// slots bounds the commands in flight, so at most idle connections
	// are open: past gomemcache's idle pool every command dials a fresh
	// connection and closes it after, and under a burst that churn (tens
	// of thousands of sockets in TIME_WAIT) slowed memcached calls until
	// the SIP front end fell behind for good.
	slots chan struct{}

	mu        sync.Mutex
	failures  int       // consecutive
	openUntil time.Time // while in the future, the shard is skipped
	probing   atomic.Bool
}

// Breaker settings: after breakerFailures consecutive failures the shard is
// skipped for breakerOpen; then one request probes it.
const (
	breakerFailures = 2
	breakerOpen     = time.Second
)

func newShardClient(addr string, timeout time.Duration, idle int) *shardClient {
	c := &shardClient{addr: addr, timeout: timeout, idle: idle, slots: make(chan struct{}, idle)}
	c.mcp.Store(c.dial())
	return c
}

func (c *shardClient) dial() *memcache.Client {
	mc := memcache.New(c.addr)
	mc.Timeout = c.timeout
	mc.MaxIdleConns = c.idle
	return mc
}

// mc is the current client. It is replaced after a failure: gomemcache
// keeps idle connections and finds a dead one only by failing a request on
// it, so after a memcached restart every pooled connection would fail one
// request each (and keep the breaker open for a minute).
func (c *shardClient) mc() *memcache.Client { return c.mcp.Load() }

// errShardBusy: every connection slot stayed taken for a whole timeout.
// The shard is overloaded or wedged; the calls holding the slots report
// which, so this is not a failure of its own (see isShardFailure).
var errShardBusy = errors.New("every connection to the shard is busy")

// use runs op on the shard's client once a connection slot is free.
func (c *shardClient) use(op func(*memcache.Client) error) error {
	select {
	case c.slots <- struct{}{}:
	default:
		t := time.NewTimer(c.timeout)
		select {
		case c.slots <- struct{}{}:
			t.Stop()
		case <-t.C:
			return errShardBusy
		}
	}
	defer func() { <-c.slots }()
	return op(c.mc())
}

// available reports whether requests should go to this shard now. While
// the breaker is open, one caller at a time is let through as a probe once
// the open period has passed.
func (c *shardClient) available(now time.Time) bool {
	c.mu.Lock()
	open := now.Before(c.openUntil)
	tripped := c.failures >= breakerFailures
	c.mu.Unlock()
	if open {
		return false
	}
	if !tripped {
		return true
	}
	return c.probing.CompareAndSwap(false, true)
}

// usable reports, without claiming a probe, whether the breaker lets
// requests through now.
func (c *shardClient) usable(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !now.Before(c.openUntil)
}

// record notes the outcome of a request.
func (c *shardClient) record(err error, now time.Time) {
	failed := isShardFailure(err)
	c.mu.Lock()
	if failed {
		// A timeout leaves the pooled connections sound (a slow shard, not
		// a restarted one); replacing them all then would only add a
		// storm of new connections to a shard already slow.
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			if old := c.mcp.Swap(c.dial()); old != nil {
				_ = old.Close()
			}
		}
		c.failures++
		if c.failures >= breakerFailures {
			c.openUntil = now.Add(breakerOpen)
		}
	} else {
		c.failures = 0
		c.openUntil = time.Time{}
	}
	c.mu.Unlock()
	c.probing.Store(false)
}

// isShardFailure separates "the shard did not answer" from answers that
// are part of the protocol (miss, cas conflict, not stored).
func isShardFailure(err error) bool {
	switch {
	case err == nil,
		errors.Is(err, memcache.ErrCacheMiss),
		errors.Is(err, memcache.ErrCASConflict),
		errors.Is(err, memcache.ErrNotStored),
		errors.Is(err, errShardBusy):
		return false
	}
	return true
}

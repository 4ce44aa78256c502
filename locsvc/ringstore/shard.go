package ringstore

import (
	"errors"
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
	c := &shardClient{addr: addr, timeout: timeout, idle: idle}
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
		if old := c.mcp.Swap(c.dial()); old != nil {
			_ = old.Close()
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
		errors.Is(err, memcache.ErrNotStored):
		return false
	}
	return true
}

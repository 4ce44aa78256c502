package ringstore

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/locsvc/locsvc/internal/mcpipe"
)

// shardClient talks to one memcached server and remembers whether it is
// failing, so callers skip a dead shard instead of waiting on it for every
// request (mcrouter's TKO, in small).
type shardClient struct {
	addr string
	// mc pipelines every caller's commands over a few connections: their
	// number stays fixed under any burst, and a connection the server
	// closed is redialled by the client itself.
	mc *mcpipe.Client
	// log hears when the breaker opens and closes: a shard this node
	// cannot talk to (down, or TLS-only to a plain client) shows in the
	// log once per outage, with the error, not once per request.
	log *slog.Logger

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

func newShardClient(addr string, cfg Config, log *slog.Logger) *shardClient {
	return &shardClient{addr: addr, log: log, mc: mcpipe.New(addr, mcpipe.Config{
		Timeout: cfg.Timeout, Conns: cfg.ConnsPerShard, Dial: cfg.Dial,
	})}
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

// releaseProbe gives up the probe available may have granted, for a call
// that was not made or was cut short by its context: neither says whether
// the shard works.
func (c *shardClient) releaseProbe() { c.probing.Store(false) }

// record notes the outcome of a request.
func (c *shardClient) record(err error, now time.Time) {
	failed := isShardFailure(err)
	c.mu.Lock()
	was := c.failures
	if failed {
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
	switch {
	case failed && was == breakerFailures-1:
		c.log.Warn("memcached shard failing: skipped, and tried again every second until it answers",
			"shard", c.addr, "err", err)
	case !failed && was >= breakerFailures:
		c.log.Info("memcached shard answers again", "shard", c.addr)
	}
}

// isShardFailure separates "the shard did not answer" from answers that
// are part of the protocol (miss, cas conflict, not stored) and from a
// queue that is full: the commands ahead in it report whether the shard
// is slow or dead.
func isShardFailure(err error) bool {
	switch {
	case err == nil,
		errors.Is(err, mcpipe.ErrCacheMiss),
		errors.Is(err, mcpipe.ErrCASConflict),
		errors.Is(err, mcpipe.ErrNotStored),
		errors.Is(err, mcpipe.ErrBusy),
		errors.Is(err, mcpipe.ErrMalformedKey):
		return false
	}
	return true
}

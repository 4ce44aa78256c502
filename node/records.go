package node

import (
	"context"
	"sync"
	"time"

	"github.com/locsvc/locsvc/locsvc/ringstore"
)

// shardFresh is how long a reading of the local shards' item counts
// serves scrapes: Prometheus servers that scrape together, or a scrape
// right after another, share one reading instead of each dialling every
// shard.
const shardFresh = time.Second

// shardRecords are the item counts of the shards this node fronts, for
// locsvc_shard_records. A reading younger than shardFresh is returned as
// it is; else one refresh reads every shard at once (concurrent callers
// wait for the same one), bounded as a whole by one memcached timeout, so
// a scrape never takes longer than that however many shards there are or
// however many of them hang. A shard that does not answer in time is left
// out, as locsvc_ring_shards shows it.
func (c *cluster) shardRecords() map[string]uint64 {
	c.mu.Lock()
	if time.Since(c.recordsAt) < shardFresh {
		r := c.records
		c.mu.Unlock()
		return r
	}
	done := c.refreshing
	if done == nil {
		done = make(chan struct{})
		c.refreshing = done
		c.polls.Add(1)
		go c.refreshRecords(done)
	}
	c.mu.Unlock()
	<-done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.records
}

// refreshRecords reads every local shard's curr_items in parallel.
func (c *cluster) refreshRecords(done chan struct{}) {
	defer c.polls.Done()
	ctx, cancel := context.WithTimeout(c.pollCtx, c.cfg.MemcachedTimeout)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	got := make(map[string]uint64, len(c.cfg.Memcached))
	for _, addr := range c.cfg.Memcached {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, err := ringstore.ServerStats(ctx, c.dial, addr, "", c.cfg.MemcachedTimeout); err == nil {
				mu.Lock()
				got[addr] = st["curr_items"]
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	c.mu.Lock()
	c.records, c.recordsAt, c.refreshing = got, time.Now(), nil
	c.mu.Unlock()
	close(done)
}

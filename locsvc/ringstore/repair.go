package ringstore

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/locsvc/locsvc/internal/mcpipe"
	"github.com/locsvc/locsvc/internal/pace"
	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/ring"
)

// Repairer restores R copies of every record after the ring changes: a
// node joins or leaves, or a shard fails or comes back (perhaps empty).
// Each node walks only the shards it fronts and pushes every record to the
// replicas the current ring names, so the work is spread over the cluster
// and a returning shard is refilled by everyone at once, each at a paced
// rate, instead of by one donor flooded with a full sync.
type Repairer struct {
	store *Store
	local []string // memcached addresses this node fronts
	rate  int      // keys per second
	every time.Duration

	trigger chan struct{}
	stats   repairCounters
	mu      sync.Mutex
	last    time.Time
}

// RepairStats is a snapshot of repair's counters, for Status.
type RepairStats struct {
	Running  bool   // a pass is under way
	Passes   uint64 // completed passes
	Scanned  uint64 // records examined
	Copied   uint64 // replica writes that changed a shard
	Failures uint64
}

// repairCounters are the live values behind RepairStats.
type repairCounters struct {
	running                           atomic.Bool
	passes, scanned, copied, failures atomic.Uint64
}

// NewRepairer repairs what the shards at local hold, at most rate records
// a second, on every ring change and at least every interval.
func (s *Store) NewRepairer(local []string, rate int, every time.Duration) *Repairer {
	if rate <= 0 {
		rate = 5000
	}
	if every <= 0 {
		every = 5 * time.Minute
	}
	return &Repairer{store: s, local: local, rate: rate, every: every, trigger: make(chan struct{}, 1)}
}

// Stats returns the counters as they are now.
func (r *Repairer) Stats() RepairStats {
	c := &r.stats
	return RepairStats{
		Running: c.running.Load(), Passes: c.passes.Load(), Scanned: c.scanned.Load(),
		Copied: c.copied.Load(), Failures: c.failures.Load(),
	}
}

// LastPass is when the last complete pass ended (zero before the first).
func (r *Repairer) LastPass() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// Trigger asks for a pass soon. Triggers that arrive during a pass
// coalesce into one more pass after it.
func (r *Repairer) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// retryAfter is how soon a pass that met failures is run again, so repair
// resumes until every record has its copies instead of waiting for the
// next membership change.
const retryAfter = 5 * time.Second

// Run repairs until ctx ends: a pass on each trigger, on each ring snapshot
// from changes (nil: none), every interval, and again shortly after a pass
// that met failures.
func (r *Repairer) Run(ctx context.Context, changes <-chan *ring.Ring) {
	tick := time.NewTicker(r.every)
	defer tick.Stop()
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.trigger:
		case <-changes:
		case <-tick.C:
		case <-retry:
		}
		// Let a burst of membership events settle into one pass.
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
		failures := r.stats.failures.Load()
		r.Pass(ctx)
		retry = nil
		if r.stats.failures.Load() != failures {
			retry = time.After(retryAfter)
		}
	}
}

// repairBatch is how many records one repair step reads and compares
// with a single GetMulti per shard.
const repairBatch = 100

// Pass walks every local shard once.
func (r *Repairer) Pass(ctx context.Context) {
	r.stats.running.Store(true)
	defer r.stats.running.Store(false)
	pacer := pace.New(r.rate)
	start, scanned0, copied0 := time.Now(), r.stats.scanned.Load(), r.stats.copied.Load()
	for _, addr := range r.local {
		keys, err := r.store.listKeys(ctx, addr, locsvc.IsStoreKey)
		if err != nil {
			r.stats.failures.Add(1)
			r.store.log.Warn("repair: cannot list keys", "shard", addr, "err", err)
			continue
		}
		for i := 0; i < len(keys); i += repairBatch {
			batch := keys[i:min(i+repairBatch, len(keys))]
			if err := pacer.Wait(ctx, len(batch)); err != nil {
				return
			}
			r.repairBatch(ctx, addr, batch)
		}
	}
	r.stats.passes.Add(1)
	r.mu.Lock()
	r.last = time.Now()
	r.mu.Unlock()
	r.store.log.Info("repair pass done", "took", time.Since(start).Round(time.Millisecond),
		"scanned", r.stats.scanned.Load()-scanned0, "copied", r.stats.copied.Load()-copied0)
}

// repairBatch merges the records at keys on the local shard into the
// replicas the ring names for them: one GetMulti on the local shard, one
// per replica shard to compare, and a write only where a replica lacks
// something. A local copy whose shard is no longer a replica is left to
// expire: deleting it could race a writer that still sees the old ring,
// and merging it anywhere later is harmless.
func (r *Repairer) repairBatch(ctx context.Context, local string, keys []string) {
	s := r.store
	r.stats.scanned.Add(uint64(len(keys)))
	lc := s.client(local)
	items, err := getMulti(ctx, lc, keys, s.cfg.Now)
	if err != nil {
		r.stats.failures.Add(1)
		return
	}
	now := s.cfg.Now()
	sets := make(map[string]locsvc.BindingSet, len(items))
	byShard := map[string][]string{}
	buf := make([]ring.Shard, 0, s.cfg.Replicas+spareShards)
	rg := s.src.Ring()
	skipped := 0
	defer func() { r.stats.failures.Add(uint64(skipped)) }()
	for key, it := range items {
		set := s.decode(key, local, it.Value)
		if len(locsvc.Compact(set, now).Bindings) == 0 {
			continue
		}
		sets[key] = set
		placed := 0
		p := place(rg, key, s.cfg.Replicas, buf)
		for _, sh := range p.shards {
			if placed == p.replicas {
				break
			}
			if sh.Addr != local && !s.client(sh.Addr).usable(now) {
				// A failing replica: the next shard stands in, as for
				// writes, and the pass counts a failure so that it runs
				// again once the breaker lets the replica be tried.
				skipped++
				continue
			}
			placed++
			if sh.Addr != local {
				byShard[sh.Addr] = append(byShard[sh.Addr], key)
			}
		}
	}
	var wg sync.WaitGroup
	for addr, ks := range byShard {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.pushTo(ctx, s.client(addr), ks, sets)
		}()
	}
	wg.Wait()
}

// pushTo brings one replica shard up to date for keys: compare in bulk,
// write only the records it lacks or holds stale.
func (r *Repairer) pushTo(ctx context.Context, c *shardClient, keys []string, sets map[string]locsvc.BindingSet) {
	s := r.store
	have, err := getMulti(ctx, c, keys, s.cfg.Now)
	if err != nil {
		r.stats.failures.Add(uint64(len(keys)))
		return
	}
	for _, key := range keys {
		set := sets[key]
		if it, ok := have[key]; ok {
			cur := s.decode(key, c.addr, it.Value)
			if sameLive(locsvc.Merge(cur, set), cur, s.cfg.Now()) {
				continue // the replica already holds everything we have
			}
		}
		_, wrote, err := s.mergeInto(ctx, c, key, set, nil)
		if ctx.Err() != nil {
			c.releaseProbe()
			return // the pass is over; what is left waits for the next
		}
		c.record(err, s.cfg.Now())
		if err != nil {
			r.stats.failures.Add(1)
			continue
		}
		if wrote {
			r.stats.copied.Add(1)
		}
	}
}

// getMulti reads keys from one shard.
func getMulti(ctx context.Context, c *shardClient, keys []string, now func() time.Time) (map[string]*mcpipe.Item, error) {
	items, err := c.mc.GetMulti(ctx, keys)
	if ctx.Err() != nil {
		c.releaseProbe()
		return nil, ctx.Err()
	}
	c.record(err, now())
	return items, err
}

// sameLive reports whether merging changed nothing that matters: the
// encodings of the compacted sets are equal.
func sameLive(merged, cur locsvc.BindingSet, now time.Time) bool {
	a, err1 := locsvc.Encode(locsvc.Compact(merged, now))
	b, err2 := locsvc.Encode(locsvc.Compact(cur, now))
	return err1 == nil && err2 == nil && bytes.Equal(a, b)
}

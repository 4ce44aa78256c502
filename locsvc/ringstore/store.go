package ringstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/locsvc/locsvc/internal/mcpipe"
	"github.com/locsvc/locsvc/internal/workpool"
	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/ring"
)

// RingSource gives the current ring snapshot (ring.Membership does).
type RingSource interface {
	Ring() *ring.Ring
}

// Config tunes the store. Zero values take the defaults noted.
type Config struct {
	// Replicas is R, the copies kept of each record (default 2).
	Replicas int
	// WriteQuorum is W, the acknowledgements a write needs (default: a
	// majority of R, counting only as many shards as the ring has).
	WriteQuorum int
	// Timeout bounds each memcached call (default 500 ms); a context
	// deadline that comes sooner bounds it instead.
	Timeout time.Duration
	// ConnsPerShard is how many connections the store keeps to each
	// shard (default 2); every call is pipelined over them.
	ConnsPerShard int
	// Grace is how long a record outlives its latest binding in memcached
	// (default 2 min), covering clock skew between nodes.
	Grace time.Duration
	// Dial opens every connection the store makes to a shard, those of
	// its pipelined clients and those of repair's key listings (default
	// plain TCP; Dialer builds the TLS one).
	Dial   DialFunc
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Replicas < 1 {
		c.Replicas = 2
	}
	if c.Timeout <= 0 {
		c.Timeout = 500 * time.Millisecond
	}
	if c.ConnsPerShard <= 0 {
		c.ConnsPerShard = 2
	}
	if c.Grace <= 0 {
		c.Grace = 2 * time.Minute
	}
	c.Dial = dialFor(c.Dial)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Store is a locsvc.Store over the memcached shards of a ring.
type Store struct {
	cfg Config
	src RingSource
	log *slog.Logger

	mu      sync.Mutex
	clients map[string]*shardClient

	repairs chan repairJob
	stop    chan struct{}
	// bg is the context of background work; Close cancels it.
	bg       context.Context
	cancelBg context.CancelFunc
	wg       sync.WaitGroup
	workers  *workpool.Pool

	stats storeCounters
}

// Stats is a snapshot of what the store did, for Status and metrics.
type Stats struct {
	Reads, Writes      uint64
	ReadFailures       uint64 // no replica answered
	WriteFailures      uint64 // fewer than W acknowledged
	ReplicaErrors      uint64 // single replica calls that failed
	Failovers          uint64 // calls sent past a failed replica to the next shard
	ReadRepairs        uint64 // replicas rewritten after a read found them stale
	ReadRepairsDropped uint64 // read repairs skipped because the queue was full
	CASConflicts       uint64
	CorruptValues      uint64
}

// storeCounters are the live values behind Stats.
type storeCounters struct {
	reads, writes      atomic.Uint64
	readFailures       atomic.Uint64
	writeFailures      atomic.Uint64
	replicaErrors      atomic.Uint64
	failovers          atomic.Uint64
	readRepairs        atomic.Uint64
	readRepairsDropped atomic.Uint64
	casConflicts       atomic.Uint64
	corruptValues      atomic.Uint64
}

// readRepairQueue bounds pending read repairs; past it they are dropped
// (the membership repair pass and the next read catch them).
const readRepairQueue = 4096

// maxCASAttempts bounds read-merge-write retries on one replica.
const maxCASAttempts = 32

type repairJob struct {
	addr string
	key  string
	set  locsvc.BindingSet
}

// New returns a store over the shards src names. Close it to stop its
// background read repair.
func New(src RingSource, cfg Config) *Store {
	cfg.setDefaults()
	s := &Store{
		cfg: cfg, src: src, log: cfg.Logger, clients: make(map[string]*shardClient),
		repairs: make(chan repairJob, readRepairQueue), stop: make(chan struct{}),
	}
	s.bg, s.cancelBg = context.WithCancel(context.Background())
	s.workers = workpool.New(replicaWorkers, s.stop)
	for range 2 {
		s.wg.Add(1)
		go s.readRepairLoop()
	}
	return s
}

// Close stops background work. In-flight calls finish; a read repair in
// progress is cut short.
func (s *Store) Close() error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.cancelBg()
	s.wg.Wait()
	s.mu.Lock()
	for _, c := range s.clients {
		_ = c.mc.Close()
	}
	s.mu.Unlock()
	return nil
}

// Stats returns the counters as they are now.
func (s *Store) Stats() Stats {
	c := &s.stats
	return Stats{
		Reads: c.reads.Load(), Writes: c.writes.Load(),
		ReadFailures: c.readFailures.Load(), WriteFailures: c.writeFailures.Load(),
		ReplicaErrors: c.replicaErrors.Load(), Failovers: c.failovers.Load(),
		ReadRepairs: c.readRepairs.Load(), ReadRepairsDropped: c.readRepairsDropped.Load(),
		CASConflicts: c.casConflicts.Load(), CorruptValues: c.corruptValues.Load(),
	}
}

// ShardTraffic is what the store sent one shard: commands, and the socket
// writes that carried them (more commands per write, less CPU per command).
type ShardTraffic struct {
	Commands, Writes uint64
}

// Traffic returns the traffic to every shard the store has talked to, by
// address.
func (s *Store) Traffic() map[string]ShardTraffic {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]ShardTraffic, len(s.clients))
	for addr, c := range s.clients {
		st := c.mc.Stats()
		out[addr] = ShardTraffic{Commands: st.Commands, Writes: st.Writes}
	}
	return out
}

// Replicas is R.
func (s *Store) Replicas() int { return s.cfg.Replicas }

func (s *Store) client(addr string) *shardClient {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[addr]
	if !ok {
		c = newShardClient(addr, s.cfg, s.log)
		s.clients[addr] = c
	}
	return c
}

// replicaWorkers is how many goroutines stand ready for replica calls.
const replicaWorkers = 64

// place is the placement of key on the current ring.
func (s *Store) place(key string, buf []ring.Shard) (placement, *ring.Ring) {
	r := s.src.Ring()
	return place(r, key, s.cfg.Replicas, buf), r
}

// quorum is W on ring r.
func (s *Store) quorum(r *ring.Ring) int {
	return writeQuorum(s.cfg.WriteQuorum, s.cfg.Replicas, r.Len())
}

type replicaRead struct {
	addr  string
	found bool
	item  *mcpipe.Item // as read, CAS token included; nil when not found
	set   locsvc.BindingSet
	next  *target // for a write that follows: what this replica should hold
}

// Get implements locsvc.Store: all replicas in parallel, merged; stale or
// missing replicas are queued for repair. It waits for every replica it
// asked until ctx ends; then it fails with an error wrapping ctx.Err(),
// even if some replica had answered.
func (s *Store) Get(ctx context.Context, key string) (locsvc.BindingSet, error) {
	s.stats.reads.Add(1)
	var buf [candBuf]ring.Shard
	p, _ := s.place(key, buf[:0])
	reads, merged, err := s.read(ctx, key, p)
	if err != nil {
		return locsvc.BindingSet{}, err
	}
	s.queueReadRepair(key, reads, merged)
	return merged, nil
}

// Update implements locsvc.Store. The write reuses each replica's read
// (its value and CAS token), so a REGISTER costs one gets and one cas per
// replica; a second gets happens only when another writer got in between.
// No read repair is queued: the write itself brings every replica it
// reaches up to date. Read and write go to the shards of one ring
// snapshot.
//
// The read doubles as the write's check that enough shards answer: when
// fewer than W did, the write is not attempted, as it would most likely
// fail after landing on some of them.
//
// A ctx that ends fails the call with an error wrapping ctx.Err(). If it
// ends before the write starts, nothing is written; if it ends during the
// write, commands not yet sent are not sent, but those sent may have
// landed (see write).
func (s *Store) Update(ctx context.Context, key string, change func(locsvc.BindingSet) (locsvc.BindingSet, error)) (locsvc.BindingSet, error) {
	s.stats.reads.Add(1)
	var buf [candBuf]ring.Shard
	p, r := s.place(key, buf[:0])
	reads, cur, err := s.read(ctx, key, p)
	if err != nil {
		return locsvc.BindingSet{}, err
	}
	if err := ctx.Err(); err != nil {
		return locsvc.BindingSet{}, fmt.Errorf("ended before the write: %w", err)
	}
	quorum := s.quorum(r)
	if len(reads) < quorum {
		s.stats.writeFailures.Add(1)
		return locsvc.BindingSet{}, fmt.Errorf("%d shard(s) answered the read, %d needed to write: nothing written", len(reads), quorum)
	}
	next, err := change(cur)
	if err != nil {
		return locsvc.BindingSet{}, err
	}
	return s.write(ctx, key, next, reads, p, quorum)
}

// read gets key from the R replicas of p in parallel (falling over past
// failed ones) and returns what each held and their merge, compacted.
func (s *Store) read(ctx context.Context, key string, p placement) ([]replicaRead, locsvc.BindingSet, error) {
	var mu sync.Mutex
	reads := make([]replicaRead, 0, s.cfg.Replicas)
	_, err := s.fanOut(ctx, p, readTolerance(p.replicas), func(ctx context.Context, c *shardClient) error {
		rr := replicaRead{addr: c.addr}
		it, err := c.mc.Get(ctx, key)
		switch {
		case errors.Is(err, mcpipe.ErrCacheMiss):
		case err != nil:
			return err
		default:
			rr.found, rr.item = true, it
		}
		mu.Lock()
		reads = append(reads, rr)
		mu.Unlock()
		return nil
	})
	if err != nil {
		s.stats.readFailures.Add(1)
		return nil, locsvc.BindingSet{}, err
	}
	// Replicas in step (the common case) hold the same bytes: decode and
	// merge those once.
	var merged locsvc.BindingSet
next:
	for i := range reads {
		r := &reads[i]
		if !r.found {
			continue
		}
		for j := range i {
			if reads[j].found && bytes.Equal(reads[j].item.Value, r.item.Value) {
				r.set = reads[j].set
				continue next
			}
		}
		r.set = s.decode(key, r.addr, r.item.Value)
		merged = locsvc.Merge(merged, r.set)
	}
	return reads, locsvc.Compact(merged, s.cfg.Now()), nil
}

// queueReadRepair rewrites replicas that disagree. Identical raw values
// (the common case) cost one comparison.
func (s *Store) queueReadRepair(key string, reads []replicaRead, merged locsvc.BindingSet) {
	if len(merged.Bindings) == 0 {
		return
	}
	agree := true
	for _, r := range reads {
		if !r.found || !bytes.Equal(r.item.Value, reads[0].item.Value) {
			agree = false
			break
		}
	}
	if agree {
		return
	}
	for _, r := range reads {
		select {
		case s.repairs <- repairJob{addr: r.addr, key: key, set: merged}:
		default:
			s.stats.readRepairsDropped.Add(1)
		}
	}
}

func (s *Store) readRepairLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case j := <-s.repairs:
			c := s.client(j.addr)
			_, wrote, err := s.mergeInto(s.bg, c, j.key, j.set, nil)
			c.record(err, s.cfg.Now())
			if err != nil {
				s.log.Debug("read repair failed", "shard", j.addr, "key", j.key, "err", err)
				continue
			}
			if wrote {
				s.stats.readRepairs.Add(1)
			}
		}
	}
}

// Merge joins set into what R replicas hold under key (read-merge-write
// on each in parallel, W acknowledgements needed) and returns the result.
// A ctx that ends fails it as it does Update.
func (s *Store) Merge(ctx context.Context, key string, set locsvc.BindingSet) (locsvc.BindingSet, error) {
	var buf [candBuf]ring.Shard
	p, r := s.place(key, buf[:0])
	return s.write(ctx, key, set, nil, p, s.quorum(r))
}

// write merges set into the R replicas of p in parallel, quorum
// acknowledgements needed; reads, when given, are what those replicas
// held a moment ago and spare each a gets.
//
// memcached has no transactions, so a write that fails may have landed
// on some replicas, where reads see it. write keeps that to what could
// not be helped: it writes nothing when the open breakers already rule
// the quorum out or ctx has ended, and once the quorum is out of reach or
// ctx ends it cancels the calls in flight, whose commands not yet sent
// are then never sent. Undoing a command that landed is not attempted: a
// concurrent writer may have merged it already, and taking it out again
// could drop that writer's bindings.
func (s *Store) write(ctx context.Context, key string, set locsvc.BindingSet, reads []replicaRead, p placement, quorum int) (locsvc.BindingSet, error) {
	s.stats.writes.Add(1)
	planTargets(reads, set, s.cfg.Now())
	var mu sync.Mutex
	result := set
	_, err := s.fanOut(ctx, p, writeTolerance(p.replicas, quorum), func(ctx context.Context, c *shardClient) error {
		var prior *replicaRead
		for i := range reads {
			if reads[i].addr == c.addr {
				prior = &reads[i]
			}
		}
		stored, _, err := s.mergeInto(ctx, c, key, set, prior)
		if err == nil {
			mu.Lock()
			result = locsvc.Merge(result, stored)
			mu.Unlock()
		}
		return err
	})
	if err != nil {
		s.stats.writeFailures.Add(1)
		return locsvc.BindingSet{}, fmt.Errorf("write: %w", err)
	}
	return locsvc.Compact(result, s.cfg.Now()), nil
}

// mergeInto joins set into what one shard holds under key, with gets/cas
// (add when missing) and retries on conflict. prior, when not nil, is a
// read of this shard that stands in for the first gets. It reports the
// stored result and whether it had to write. It stops retrying once ctx
// ends.
func (s *Store) mergeInto(ctx context.Context, c *shardClient, key string, set locsvc.BindingSet, prior *replicaRead) (locsvc.BindingSet, bool, error) {
	for range maxCASAttempts {
		if err := ctx.Err(); err != nil {
			return locsvc.BindingSet{}, false, err
		}
		now := s.cfg.Now()
		var it *mcpipe.Item // what the shard holds; nil when nothing
		var t *target
		if prior != nil {
			it, t = prior.item, prior.next
			if t == nil {
				t = targetFor(prior.set, prior.found, set, now)
			}
			prior = nil
		} else {
			var err error
			var held locsvc.BindingSet
			switch it, err = c.mc.Get(ctx, key); {
			case errors.Is(err, mcpipe.ErrCacheMiss):
				it = nil
			case err != nil:
				return locsvc.BindingSet{}, false, err
			default:
				held = s.decode(key, c.addr, it.Value)
			}
			t = targetFor(held, it != nil, set, now)
		}
		if t.err != nil {
			return t.m, false, t.err
		}
		if it == nil {
			if t.val == nil {
				return t.m, false, nil
			}
			err := c.mc.Add(ctx, &mcpipe.Item{Key: key, Value: t.val, Expiration: ttlFor(t.m.LatestExpiry(), now, s.cfg.Grace)})
			if errors.Is(err, mcpipe.ErrNotStored) {
				s.stats.casConflicts.Add(1)
				continue // another writer added it first: merge with theirs
			}
			return t.m, err == nil, err
		}
		if bytes.Equal(t.val, it.Value) {
			return t.m, false, nil
		}
		// A copy: the read it came from may be shared with other callers.
		next := *it
		next.Value = t.val
		next.Expiration = ttlFor(t.m.LatestExpiry(), now, s.cfg.Grace)
		err := c.mc.CompareAndSwap(ctx, &next)
		if errors.Is(err, mcpipe.ErrCASConflict) || errors.Is(err, mcpipe.ErrCacheMiss) {
			s.stats.casConflicts.Add(1)
			continue
		}
		return t.m, err == nil, err
	}
	return locsvc.BindingSet{}, false, fmt.Errorf("gave up after %d compare-and-swap conflicts", maxCASAttempts)
}

// target is what a replica should hold once set is merged into what it
// held, and its encoding.
type target struct {
	m   locsvc.BindingSet
	val []byte // nil when the replica held nothing and m is empty: nothing to write
	err error
}

// targetFor computes the target for a replica that held held (found
// false: nothing).
func targetFor(held locsvc.BindingSet, found bool, set locsvc.BindingSet, now time.Time) *target {
	t := &target{}
	if found {
		t.m = locsvc.Compact(locsvc.Merge(held, set), now)
	} else if t.m = locsvc.Compact(set, now); len(t.m.Bindings) == 0 {
		return t
	}
	t.val, t.err = locsvc.Encode(t.m)
	return t
}

// planTargets gives each read its target before the replica calls start,
// computing it once for replicas that held the same bytes (the common
// case; encoding alone was 5% of a REGISTER's CPU when every replica call
// did its own).
func planTargets(reads []replicaRead, set locsvc.BindingSet, now time.Time) {
next:
	for i := range reads {
		r := &reads[i]
		for j := range i {
			if o := &reads[j]; o.found == r.found && (!r.found || bytes.Equal(o.item.Value, r.item.Value)) {
				r.next = o.next
				continue next
			}
		}
		r.next = targetFor(r.set, r.found, set, now)
	}
}

// decode reads a stored value; a corrupt one is logged, counted and taken
// as empty, so the next write replaces it.
func (s *Store) decode(key, addr string, val []byte) locsvc.BindingSet {
	set, err := locsvc.Decode(val)
	if err != nil {
		s.stats.corruptValues.Add(1)
		s.log.Warn("ignoring undecodable record", "shard", addr, "key", key, "err", err)
		return locsvc.BindingSet{}
	}
	return set
}

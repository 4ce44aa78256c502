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
	// Timeout bounds each memcached call (default 500 ms).
	Timeout time.Duration
	// ConnsPerShard is how many connections the store keeps to each
	// shard (default 2); every call is pipelined over them.
	ConnsPerShard int
	// Grace is how long a record outlives its latest binding in memcached
	// (default 2 min), covering clock skew between nodes.
	Grace  time.Duration
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
	wg      sync.WaitGroup
	workers *workpool.Pool

	stats Stats
}

// Stats counts what the store did, for Status and metrics.
type Stats struct {
	Reads, Writes      atomic.Uint64
	ReadFailures       atomic.Uint64 // no replica answered
	WriteFailures      atomic.Uint64 // fewer than W acknowledged
	ReplicaErrors      atomic.Uint64 // single replica calls that failed
	Failovers          atomic.Uint64 // calls sent past a failed replica to the next shard
	ReadRepairs        atomic.Uint64 // replicas rewritten after a read found them stale
	ReadRepairsDropped atomic.Uint64 // read repairs skipped because the queue was full
	CASConflicts       atomic.Uint64
	CorruptValues      atomic.Uint64
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
	s.workers = workpool.New(replicaWorkers, s.stop)
	for range 2 {
		s.wg.Add(1)
		go s.readRepairLoop()
	}
	return s
}

// Close stops background work. In-flight calls finish.
func (s *Store) Close() error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.wg.Wait()
	s.mu.Lock()
	for _, c := range s.clients {
		_ = c.mc.Close()
	}
	s.mu.Unlock()
	return nil
}

// Stats returns the live counters.
func (s *Store) Stats() *Stats { return &s.stats }

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
		out[addr] = ShardTraffic{Commands: st.Commands.Load(), Writes: st.Writes.Load()}
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
		c = newShardClient(addr, s.cfg.Timeout, s.cfg.ConnsPerShard)
		s.clients[addr] = c
	}
	return c
}

// replicaWorkers is how many goroutines stand ready for replica calls.
const replicaWorkers = 64

// spareShards is how many shards past R a call may fall over to.
const spareShards = 2

// candBuf sizes the callers' buffers for candidates, on their stacks: the
// shard list was the largest allocation of a REGISTER (4 shards of 88
// bytes, twice). A larger R spills to the heap.
const candBuf = 4 + spareShards

// candidates are the shards for key in ring order, appended to buf: the
// first R are its replicas, the rest take over when one of those fails.
func (s *Store) candidates(key string, buf []ring.Shard) (cands []ring.Shard, quorum int) {
	r := s.src.Ring()
	cands = r.ReplicaSet(key, s.cfg.Replicas+spareShards, buf)
	quorum = s.cfg.WriteQuorum
	if quorum <= 0 {
		// A majority of R, where R cannot exceed the shards there are: a
		// one-shard ring still takes writes.
		quorum = min(s.cfg.Replicas, r.Len())/2 + 1
	}
	return cands, quorum
}

// onReplicas runs fn on up to want shards from cands, in parallel, in ring
// order, skipping shards whose breaker is open. Each shard that fails is
// replaced by the next candidate. It returns how many calls succeeded and
// the last error seen.
func (s *Store) onReplicas(cands []ring.Shard, want int, fn func(*shardClient) error) (int, error) {
	done := make(chan error, len(cands))
	next, inflight, launched := 0, 0, 0
	var lastErr error
	var skipped []*shardClient // passed over for an open breaker
	inline := false            // run the next call on this goroutine
	call := func(c *shardClient) {
		inflight++
		launched++
		one := func() {
			err := fn(c)
			c.record(err, s.cfg.Now())
			if err != nil {
				err = fmt.Errorf("shard %s: %w", c.addr, err)
			}
			done <- err // buffered for every candidate: never blocks
		}
		if inline {
			one()
			return
		}
		s.workers.Run(one)
	}
	launch := func() bool {
		for next < len(cands) {
			c := s.client(cands[next].Addr)
			next++
			if !c.available(s.cfg.Now()) {
				lastErr = fmt.Errorf("shard %s is failing (breaker open)", c.addr)
				skipped = append(skipped, c)
				continue
			}
			call(c)
			return true
		}
		// Every breaker open (an overloaded box timing out everywhere):
		// trying the shards anyway beats failing the call outright.
		if launched == 0 && len(skipped) > 0 {
			call(skipped[0])
			skipped = skipped[1:]
			return true
		}
		return false
	}
	// The caller would only wait, so it makes the last of the first calls
	// itself: one goroutine hand-off fewer per call.
	for i := range want {
		inline = i == want-1
		if !launch() {
			break
		}
	}
	inline = false
	ok := 0
	for inflight > 0 {
		err := <-done
		inflight--
		if err == nil {
			ok++
			continue
		}
		lastErr = err
		s.stats.ReplicaErrors.Add(1)
		if isShardFailure(errors.Unwrap(err)) && launch() {
			s.stats.Failovers.Add(1)
		}
	}
	if lastErr == nil && ok == 0 {
		lastErr = errors.New("the ring has no healthy shard")
	}
	return ok, lastErr
}

type replicaRead struct {
	addr  string
	found bool
	item  *mcpipe.Item // as read, CAS token included; nil when not found
	set   locsvc.BindingSet
	next  *target // for a write that follows: what this replica should hold
}

// Get implements locsvc.Store: all replicas in parallel, merged; stale or
// missing replicas are queued for repair.
func (s *Store) Get(ctx context.Context, key string) (locsvc.BindingSet, error) {
	s.stats.Reads.Add(1)
	var buf [candBuf]ring.Shard
	cands, _ := s.candidates(key, buf[:0])
	reads, merged, err := s.read(key, cands)
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
func (s *Store) Update(ctx context.Context, key string, change func(locsvc.BindingSet) (locsvc.BindingSet, error)) (locsvc.BindingSet, error) {
	s.stats.Reads.Add(1)
	var buf [candBuf]ring.Shard
	cands, quorum := s.candidates(key, buf[:0])
	reads, cur, err := s.read(key, cands)
	if err != nil {
		return locsvc.BindingSet{}, err
	}
	next, err := change(cur)
	if err != nil {
		return locsvc.BindingSet{}, err
	}
	return s.write(key, next, reads, cands, quorum)
}

// read gets key from R of cands in parallel (falling over past failed
// ones) and returns what each held and their merge, compacted.
func (s *Store) read(key string, cands []ring.Shard) ([]replicaRead, locsvc.BindingSet, error) {
	var mu sync.Mutex
	reads := make([]replicaRead, 0, s.cfg.Replicas)
	ok, err := s.onReplicas(cands, s.cfg.Replicas, func(c *shardClient) error {
		rr := replicaRead{addr: c.addr}
		it, err := c.mc.Get(key)
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
	if ok == 0 {
		s.stats.ReadFailures.Add(1)
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
			s.stats.ReadRepairsDropped.Add(1)
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
			_, wrote, err := s.mergeInto(c, j.key, j.set, nil)
			c.record(err, s.cfg.Now())
			if err != nil {
				s.log.Debug("read repair failed", "shard", j.addr, "key", j.key, "err", err)
				continue
			}
			if wrote {
				s.stats.ReadRepairs.Add(1)
			}
		}
	}
}

// Merge joins set into what R replicas hold under key (read-merge-write
// on each in parallel, W acknowledgements needed) and returns the result.
func (s *Store) Merge(ctx context.Context, key string, set locsvc.BindingSet) (locsvc.BindingSet, error) {
	var buf [candBuf]ring.Shard
	cands, quorum := s.candidates(key, buf[:0])
	return s.write(key, set, nil, cands, quorum)
}

// write merges set into R of cands in parallel, quorum acknowledgements
// needed; reads, when given, are what those replicas held a moment ago and
// spare each a gets.
func (s *Store) write(key string, set locsvc.BindingSet, reads []replicaRead, cands []ring.Shard, quorum int) (locsvc.BindingSet, error) {
	s.stats.Writes.Add(1)
	planTargets(reads, set, s.cfg.Now())
	var mu sync.Mutex
	result := set
	ok, err := s.onReplicas(cands, s.cfg.Replicas, func(c *shardClient) error {
		var prior *replicaRead
		for i := range reads {
			if reads[i].addr == c.addr {
				prior = &reads[i]
			}
		}
		stored, _, err := s.mergeInto(c, key, set, prior)
		if err == nil {
			mu.Lock()
			result = locsvc.Merge(result, stored)
			mu.Unlock()
		}
		return err
	})
	if ok < quorum {
		s.stats.WriteFailures.Add(1)
		return locsvc.BindingSet{}, fmt.Errorf("%d of %d replicas acknowledged the write, %d needed: %w",
			ok, s.cfg.Replicas, quorum, err)
	}
	return locsvc.Compact(result, s.cfg.Now()), nil
}

// mergeInto joins set into what one shard holds under key, with gets/cas
// (add when missing) and retries on conflict. prior, when not nil, is a
// read of this shard that stands in for the first gets. It reports the
// stored result and whether it had to write.
func (s *Store) mergeInto(c *shardClient, key string, set locsvc.BindingSet, prior *replicaRead) (locsvc.BindingSet, bool, error) {
	for range maxCASAttempts {
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
			switch it, err = c.mc.Get(key); {
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
			err := c.mc.Add(&mcpipe.Item{Key: key, Value: t.val, Expiration: ttlFor(t.m.LatestExpiry(), now, s.cfg.Grace)})
			if errors.Is(err, mcpipe.ErrNotStored) {
				s.stats.CASConflicts.Add(1)
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
		err := c.mc.CompareAndSwap(&next)
		if errors.Is(err, mcpipe.ErrCASConflict) || errors.Is(err, mcpipe.ErrCacheMiss) {
			s.stats.CASConflicts.Add(1)
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
		s.stats.CorruptValues.Add(1)
		s.log.Warn("ignoring undecodable record", "shard", addr, "key", key, "err", err)
		return locsvc.BindingSet{}
	}
	return set
}

package locsvc

import (
	"context"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/locsvc/locsvc/internal/pace"
)

// MemStore is the embedded store: the whole location table in this
// process's memory. It is what a single node runs on when no memcached is
// configured. Safe for concurrent use; records vanish once everything in
// them has expired.
type MemStore struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [memShards]memShard
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once
}

const defaultSweep = time.Minute

// memShards spreads the lock so concurrent REGISTERs for different AoRs
// rarely contend.
const memShards = 64

type memShard struct {
	mu   sync.Mutex
	sets map[string]BindingSet
}

// NewMemStore starts an embedded store whose sweeper removes expired
// records every sweep interval (not positive: defaultSweep). now is the
// clock (nil: time.Now).
func NewMemStore(now func() time.Time, sweep time.Duration) *MemStore {
	if now == nil {
		now = time.Now
	}
	if sweep <= 0 {
		// time.NewTicker panics on it, in a goroutine nobody can recover.
		sweep = defaultSweep
	}
	m := &MemStore{now: now, seed: maphash.MakeSeed(), stop: make(chan struct{}), done: make(chan struct{})}
	for i := range m.shards {
		m.shards[i].sets = make(map[string]BindingSet)
	}
	go m.sweepLoop(sweep)
	return m
}

func (m *MemStore) shard(key string) *memShard {
	return &m.shards[maphash.String(m.seed, key)%memShards]
}

// Get implements Store.
func (m *MemStore) Get(_ context.Context, key string) (BindingSet, error) {
	sh := m.shard(key)
	sh.mu.Lock()
	s := sh.sets[key]
	sh.mu.Unlock()
	return owned(Compact(s, m.now())), nil
}

// Update implements Store. change runs under the key's lock, so a
// register on the embedded store is atomic.
func (m *MemStore) Update(_ context.Context, key string, change func(BindingSet) (BindingSet, error)) (BindingSet, error) {
	sh := m.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	set, err := change(owned(Compact(sh.sets[key], m.now())))
	if err != nil {
		return BindingSet{}, err
	}
	return m.mergeLocked(sh, key, set), nil
}

// Merge joins set into what is stored under key and returns the result.
func (m *MemStore) Merge(_ context.Context, key string, set BindingSet) (BindingSet, error) {
	sh := m.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return m.mergeLocked(sh, key, set), nil
}

func (m *MemStore) mergeLocked(sh *memShard, key string, set BindingSet) BindingSet {
	s := Compact(Merge(sh.sets[key], set), m.now())
	if len(s.Bindings) == 0 {
		delete(sh.sets, key)
	} else {
		// Merge may have handed back set itself, which the caller still
		// holds: the store keeps a copy of its own.
		sh.sets[key] = owned(s)
	}
	return owned(s)
}

// owned copies s's bindings for one holder alone: the store, or a caller
// who may keep and edit what it gets. Merge and Compact may hand back the
// stored set or the caller's own (see BindingSet), and the stored set is
// read by other callers and the sweeper.
func owned(s BindingSet) BindingSet {
	s.Bindings = slices.Clone(s.Bindings)
	return s
}

// Records implements Walker: every record once, at most rate a second.
// Each of the store's lock shards is copied under its lock and walked
// after, so a dump holds up a REGISTER for at most the copy of 1/64 of
// the table, never for fn.
func (m *MemStore) Records(ctx context.Context, rate int, fn func(BindingSet) error) error {
	pacer := pace.New(rate)
	var sets []BindingSet
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		sets = sets[:0]
		for _, s := range sh.sets {
			// Stored sets are never edited in place (see mergeLocked), so
			// they may be read after the lock is gone.
			sets = append(sets, s)
		}
		sh.mu.Unlock()
		for _, s := range sets {
			if err := pacer.Wait(ctx, 1); err != nil {
				return err
			}
			if err := fn(owned(Compact(s, m.now()))); err != nil {
				return err
			}
		}
	}
	return nil
}

// Len counts the records held, expired ones not yet swept included.
func (m *MemStore) Len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += len(sh.sets)
		sh.mu.Unlock()
	}
	return n
}

// Sweep drops every record with nothing left in it at the current time.
func (m *MemStore) Sweep() {
	now := m.now()
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for k, s := range sh.sets {
			if !s.LatestExpiry().After(now) {
				delete(sh.sets, k)
			}
		}
		sh.mu.Unlock()
	}
}

func (m *MemStore) sweepLoop(every time.Duration) {
	defer close(m.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.Sweep()
		}
	}
}

// Close stops the sweeper. It may be called more than once, concurrently.
func (m *MemStore) Close() error {
	m.closed.Do(func() { close(m.stop) })
	<-m.done
	return nil
}

package node

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/locsvc/ringstore"
)

// tableCounts keeps the figures behind locsvc_aors and locsvc_bindings: a
// background count every CountInterval, so that a scrape reads a figure
// rather than walking the table.
//
// A storage node counts the records whose first live replica is a shard
// it fronts, as that shard holds them (ringstore.ScanOptions.Local: one
// memcached read per 100 records): every record has exactly one such
// shard, so the nodes' figures sum to the cluster's, and each node reads
// only its own shards. The embedded store counts all it holds. A pure
// router or a SIP front end counts nothing. A count that fails keeps the
// last figures, and their time tells how old they are.
type tableCounts struct {
	walk  func(ctx context.Context, fn func(locsvc.BindingSet) error) error
	every time.Duration
	log   *slog.Logger

	mu     sync.Mutex
	counts locsvc.Counts
	at     time.Time // when the last complete count ended; zero before

	stop context.CancelFunc
	done chan struct{}
}

// startCounts starts the node's background count, or returns nil when it
// has nothing of its own to count.
func (n *Node) startCounts() *tableCounts {
	rate := n.cfg.RepairRate
	var walk func(context.Context, func(locsvc.BindingSet) error) error
	switch {
	case n.mem != nil:
		walk = func(ctx context.Context, fn func(locsvc.BindingSet) error) error {
			return n.mem.Records(ctx, rate, fn)
		}
	case n.cluster != nil && len(n.cfg.Memcached) > 0:
		opt := ringstore.ScanOptions{Shards: n.cfg.Memcached, Rate: rate, Local: true}
		walk = func(ctx context.Context, fn func(locsvc.BindingSet) error) error {
			return n.cluster.store.Scan(ctx, opt, fn)
		}
	default:
		return nil
	}
	t := &tableCounts{walk: walk, every: n.cfg.CountInterval, log: n.log, done: make(chan struct{})}
	if t.every <= 0 {
		t.every = time.Minute
	}
	var ctx context.Context
	ctx, t.stop = context.WithCancel(context.Background())
	go t.run(ctx)
	return t
}

// run counts at once, then every interval, until ctx ends.
func (t *tableCounts) run(ctx context.Context) {
	defer close(t.done)
	tick := time.NewTicker(t.every)
	defer tick.Stop()
	for {
		t.count(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (t *tableCounts) count(ctx context.Context) {
	var c locsvc.Counts
	err := t.walk(ctx, func(set locsvc.BindingSet) error {
		c.Add(set, time.Now())
		return nil
	})
	if err != nil {
		if ctx.Err() == nil {
			t.log.Warn("counting the records: keeping the last figures", "err", err)
		}
		return
	}
	t.mu.Lock()
	t.counts, t.at = c, time.Now()
	t.mu.Unlock()
}

// get returns the last figures and when they were made (zero: none yet).
func (t *tableCounts) get() (locsvc.Counts, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts, t.at
}

// close stops the count and waits for it; a nil t does nothing.
func (t *tableCounts) close() {
	if t == nil {
		return
	}
	t.stop()
	<-t.done
}

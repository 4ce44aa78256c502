// Package histogram counts durations into fixed buckets with atomics, for
// hot paths that must not lock or allocate to record one, and hands out
// value snapshots. It exists so that every component that times something
// (the SIP front end's answers, the gRPC calls) counts the same way, and
// so that the one place that exports metrics (package node) reads plain
// values instead of reaching into live counters.
package histogram

import (
	"sync/atomic"
	"time"
)

// Histogram counts durations by upper bound. The zero value is unusable;
// New makes one.
type Histogram struct {
	bounds  []time.Duration
	buckets []atomic.Uint64 // len(bounds)+1: the last counts what exceeds every bound
	sum     atomic.Int64    // nanoseconds
}

// New returns a histogram over bounds, which must ascend.
func New(bounds []time.Duration) *Histogram {
	return &Histogram{bounds: bounds, buckets: make([]atomic.Uint64, len(bounds)+1)}
}

// Observe counts one duration.
func (h *Histogram) Observe(d time.Duration) {
	i := 0
	for i < len(h.bounds) && d > h.bounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sum.Add(int64(d))
}

// Snapshot is a histogram's counts at one moment.
type Snapshot struct {
	Count uint64
	Sum   time.Duration
	// Bounds are the buckets' upper bounds; Buckets[i] counts durations
	// <= Bounds[i] (cumulative, as Prometheus wants them).
	Bounds  []time.Duration
	Buckets []uint64
}

// Snapshot reads the counts. Concurrent Observe calls may or may not be
// in it, each whole or not at all in Count and Buckets.
func (h *Histogram) Snapshot() Snapshot {
	out := Snapshot{Sum: time.Duration(h.sum.Load()), Bounds: h.bounds, Buckets: make([]uint64, len(h.bounds))}
	for i := range h.buckets {
		out.Count += h.buckets[i].Load()
		if i < len(h.bounds) {
			out.Buckets[i] = out.Count
		}
	}
	return out
}

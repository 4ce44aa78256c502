package ringstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/locsvc/locsvc/ring"
)

// fixedRing is a RingSource of shards that are never dialled: the
// fan-out tests hand it calls that do not touch memcached.
type fixedRing struct{ r *ring.Ring }

func (f fixedRing) Ring() *ring.Ring { return f.r }

func newFixedRing(n int) fixedRing {
	var shards []ring.Shard
	for i := range n {
		addr := fmt.Sprintf("127.0.0.1:%d", 1+i) // never dialled
		shards = append(shards, ring.Shard{ID: addr, Addr: addr, Node: "n" + addr, Healthy: true})
	}
	return fixedRing{ring.New(shards)}
}

func TestPlace(t *testing.T) {
	for _, tc := range []struct {
		shards, replicas         int
		wantShards, wantReplicas int
	}{
		{5, 2, 4, 2}, // two replicas, two spares
		{3, 2, 3, 2}, // one spare left
		{2, 2, 2, 2}, // no spare
		{1, 2, 1, 1}, // fewer shards than R
		{0, 2, 0, 0},
	} {
		r := newFixedRing(tc.shards).r
		p := place(r, "k", tc.replicas, nil)
		if len(p.shards) != tc.wantShards || p.replicas != tc.wantReplicas {
			t.Errorf("%d shards, R=%d: placed on %d shards with %d replicas, want %d and %d",
				tc.shards, tc.replicas, len(p.shards), p.replicas, tc.wantShards, tc.wantReplicas)
		}
		if len(p.spares()) != len(p.shards)-p.replicas {
			t.Errorf("%d spares of %d shards and %d replicas", len(p.spares()), len(p.shards), p.replicas)
		}
		// Ring order: the replicas are the ring's replica set.
		want := r.ReplicaSet("k", tc.replicas, nil)
		for i := range want {
			if p.shards[i].Addr != want[i].Addr {
				t.Errorf("replica %d is %s, the ring says %s", i, p.shards[i].Addr, want[i].Addr)
			}
		}
	}
}

func TestWriteQuorum(t *testing.T) {
	for _, tc := range []struct{ configured, replicas, ringLen, want int }{
		{0, 2, 5, 2},
		{0, 3, 5, 2},
		{0, 2, 1, 1}, // a one-shard ring still takes writes
		{1, 2, 5, 1},
		{3, 3, 5, 3},
	} {
		if got := writeQuorum(tc.configured, tc.replicas, tc.ringLen); got != tc.want {
			t.Errorf("writeQuorum(%d, %d, %d) = %d, want %d", tc.configured, tc.replicas, tc.ringLen, got, tc.want)
		}
	}
}

func TestToleranceDecide(t *testing.T) {
	w := writeTolerance(3, 2)
	for _, tc := range []struct {
		ok, pending, untried int
		want                 verdict
	}{
		{0, 3, 2, undecided},
		{1, 2, 0, undecided},
		{2, 1, 0, succeeded}, // W reached; the third call still runs
		{0, 1, 0, failed},    // two failed, one left: W=2 out of reach
		{1, 0, 0, failed},
		{0, 0, 2, undecided}, // spares may still get there
	} {
		if got := w.decide(tc.ok, tc.pending, tc.untried); got != tc.want {
			t.Errorf("W=2: decide(%d, %d, %d) = %d, want %d", tc.ok, tc.pending, tc.untried, got, tc.want)
		}
	}
	r := readTolerance(2)
	if r.decide(1, 1, 0) != succeeded || r.decide(0, 1, 0) != undecided || r.decide(0, 0, 0) != failed {
		t.Error("a read succeeds with one answer and fails with none left")
	}
	if !w.replace(1, 1) || w.replace(2, 1) {
		t.Error("a failed call is replaced only while fewer than want may succeed")
	}
}

// fakeShards scripts each shard's answer to a fan-out's calls.
type fakeShards struct {
	mu        sync.Mutex
	behave    map[string]func(ctx context.Context) error
	called    []string
	cancelled []string // calls that saw their context end
}

func (f *fakeShards) fn(ctx context.Context, c *shardClient) error {
	f.mu.Lock()
	f.called = append(f.called, c.addr)
	b := f.behave[c.addr]
	f.mu.Unlock()
	if b == nil {
		return nil
	}
	err := b(ctx)
	if ctx.Err() != nil {
		f.mu.Lock()
		f.cancelled = append(f.cancelled, c.addr)
		f.mu.Unlock()
	}
	return err
}

func (f *fakeShards) calls() (called, cancelled []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.called...), append([]string(nil), f.cancelled...)
}

var errDown = errors.New("connection refused") // a shard failure

func blockUntilDone(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }

func newFanStore(t *testing.T, shards int) (*Store, placement) {
	t.Helper()
	src := newFixedRing(shards)
	s := New(src, Config{Replicas: 2})
	t.Cleanup(func() { _ = s.Close() })
	return s, place(src.r, "k", 2, nil)
}

// After W acknowledged, a write still waits for the other replica rather
// than cancel it: replicas stay in step.
func TestFanOutWritesEveryReplicaPastQuorum(t *testing.T) {
	s, p := newFanStore(t, 2)
	slow := p.shards[1].Addr
	f := &fakeShards{behave: map[string]func(context.Context) error{
		slow: func(ctx context.Context) error {
			select {
			case <-time.After(50 * time.Millisecond):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	}}
	ok, err := s.fanOut(context.Background(), p, writeTolerance(2, 1), f.fn)
	if err != nil || ok != 2 {
		t.Fatalf("fan-out = %d, %v; want both replicas written", ok, err)
	}
	if _, cancelled := f.calls(); len(cancelled) != 0 {
		t.Errorf("calls cancelled after quorum: %v", cancelled)
	}
}

// Once the quorum is out of reach, the fan-out returns and cancels the
// calls still in flight.
func TestFanOutCancelsOnceQuorumIsLost(t *testing.T) {
	s, p := newFanStore(t, 2)
	f := &fakeShards{behave: map[string]func(context.Context) error{
		p.shards[0].Addr: func(context.Context) error { return errDown },
		p.shards[1].Addr: blockUntilDone,
	}}
	start := time.Now()
	_, err := s.fanOut(context.Background(), p, writeTolerance(2, 2), f.fn)
	if err == nil || !errors.Is(err, errDown) {
		t.Fatalf("fan-out: %v, want the failure of the shard that refused", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v to give up", d)
	}
	waitFor(t, func() bool { _, c := f.calls(); return len(c) == 1 })
}

// When the caller's context ends, the fan-out stops waiting at once, with
// an error wrapping the context's, and cancels its calls.
func TestFanOutStopsWhenContextEnds(t *testing.T) {
	s, p := newFanStore(t, 3)
	f := &fakeShards{behave: map[string]func(context.Context) error{}}
	for _, sh := range p.shards {
		f.behave[sh.Addr] = blockUntilDone
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.fanOut(ctx, p, readTolerance(2), f.fn)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("fan-out: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 150*time.Millisecond {
		t.Errorf("returned after %v; the context allowed 50ms", d)
	}
	waitFor(t, func() bool { _, c := f.calls(); return len(c) == 2 })
	if called, _ := f.calls(); len(called) != 2 {
		t.Errorf("calls %v: the spare was asked though nothing failed", called)
	}
	// Cut short by the caller, the calls say nothing about the shards.
	for _, sh := range p.shards {
		if !s.client(sh.Addr).usable(time.Now()) {
			t.Errorf("breaker of %s open after calls its caller cut short", sh.Addr)
		}
	}
}

// A replica that fails is replaced by the next shard on the ring.
func TestFanOutFallsOver(t *testing.T) {
	s, p := newFanStore(t, 4)
	f := &fakeShards{behave: map[string]func(context.Context) error{
		p.shards[0].Addr: func(context.Context) error { return errDown },
	}}
	ok, err := s.fanOut(context.Background(), p, writeTolerance(2, 2), f.fn)
	if err != nil || ok != 2 {
		t.Fatalf("fan-out = %d, %v; want two acknowledgements", ok, err)
	}
	called, _ := f.calls()
	if len(called) != 3 || called[2] != p.shards[2].Addr {
		t.Errorf("calls %v, want both replicas and then the first spare %s", called, p.shards[2].Addr)
	}
	if st := s.Stats(); st.Failovers != 1 || st.ReplicaErrors != 1 {
		t.Errorf("failovers %d, replica errors %d; want 1 and 1", st.Failovers, st.ReplicaErrors)
	}
}

// A write whose quorum the open breakers already rule out is not sent
// anywhere, so it cannot land on the shards that work.
func TestFanOutWritesNothingWithoutPossibleQuorum(t *testing.T) {
	s, p := newFanStore(t, 2)
	bad := s.client(p.shards[1].Addr)
	now := time.Now()
	for range breakerFailures {
		bad.record(errDown, now)
	}
	f := &fakeShards{}
	if _, err := s.fanOut(context.Background(), p, writeTolerance(2, 2), f.fn); err == nil {
		t.Fatal("a write with one of two shards failing reached W=2")
	}
	if called, _ := f.calls(); len(called) != 0 {
		t.Errorf("shards %v were written though the quorum was out of reach", called)
	}
	// A read needs one answer: it goes to the working shard.
	if ok, err := s.fanOut(context.Background(), p, readTolerance(2), f.fn); err != nil || ok != 1 {
		t.Errorf("read = %d, %v; want the working shard's answer", ok, err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 2s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

package histogram

import (
	"slices"
	"testing"
	"time"
)

func TestObserve(t *testing.T) {
	h := New([]time.Duration{time.Millisecond, 10 * time.Millisecond})
	for _, d := range []time.Duration{0, time.Millisecond, 2 * time.Millisecond, 10 * time.Millisecond, time.Second} {
		h.Observe(d)
	}
	s := h.Snapshot()
	if s.Count != 5 || s.Sum != 1013*time.Millisecond {
		t.Errorf("count %d, sum %v", s.Count, s.Sum)
	}
	// Bounds are inclusive, and the buckets cumulative; the second above
	// every bound counts only in Count.
	if want := []uint64{2, 4}; !slices.Equal(s.Buckets, want) {
		t.Errorf("buckets %v, want %v", s.Buckets, want)
	}
}

func TestEmpty(t *testing.T) {
	s := New([]time.Duration{time.Second}).Snapshot()
	if s.Count != 0 || s.Sum != 0 || !slices.Equal(s.Buckets, []uint64{0}) {
		t.Errorf("%+v", s)
	}
}

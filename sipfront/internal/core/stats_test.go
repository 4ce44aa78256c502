package core

import (
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	var h histogram
	for _, d := range []time.Duration{0, 250 * time.Microsecond, 300 * time.Microsecond, 7 * time.Millisecond, 3 * time.Second} {
		h.observe(d)
	}
	got, ok := h.snapshot()
	if !ok || got.Count != 5 || got.Sum != 3*time.Second+7*time.Millisecond+550*time.Microsecond {
		t.Fatalf("count %d sum %v", got.Count, got.Sum)
	}
	// Cumulative: <=250µs holds 2, <=500µs 3, <=10ms 4; 3 s is above every bound.
	for i, want := range map[int]uint64{0: 2, 1: 3, 4: 3, 5: 4, len(AnswerBuckets) - 1: 4} {
		if got.Buckets[i] != want {
			t.Errorf("bucket <= %v: %d, want %d", AnswerBuckets[i], got.Buckets[i], want)
		}
	}
	if _, ok := new(histogram).snapshot(); ok {
		t.Error("an empty histogram reported")
	}
}

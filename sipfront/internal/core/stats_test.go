package core

import (
	"testing"
	"time"

	"github.com/locsvc/locsvc/internal/histogram"
)

func TestHistogramBuckets(t *testing.T) {
	h := histogram.New(AnswerBuckets)
	for _, d := range []time.Duration{0, 250 * time.Microsecond, 300 * time.Microsecond, 7 * time.Millisecond, 3 * time.Second} {
		h.Observe(d)
	}
	got, ok := answerSnapshot(h)
	if !ok || got.Count != 5 || got.Sum != 3*time.Second+7*time.Millisecond+550*time.Microsecond {
		t.Fatalf("count %d sum %v", got.Count, got.Sum)
	}
	// Cumulative: <=250µs holds 2, <=500µs 3, <=10ms 4; 3 s is above every bound.
	for i, want := range map[int]uint64{0: 2, 1: 3, 4: 3, 5: 4, len(AnswerBuckets) - 1: 4} {
		if got.Buckets[i] != want {
			t.Errorf("bucket <= %v: %d, want %d", AnswerBuckets[i], got.Buckets[i], want)
		}
	}
	if _, ok := answerSnapshot(histogram.New(AnswerBuckets)); ok {
		t.Error("an empty histogram reported")
	}
}

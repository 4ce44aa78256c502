package main

import (
	"context"
	"fmt"
	"github.com/locsvc/locsvc/integration/bench/internal/procs"
	"slices"
	"strings"
	"sync"
	"time"
)

// pollEvery is how often watch asks each node for its view: the
// resolution of every time it measures. Finer polling costs the nodes
// CPU (a Status call computes ownership afresh after each ring change)
// on a box that runs them all.
const pollEvery = 250 * time.Millisecond

// watch polls each of ms until the members it sees alive and the nodes
// whose shards it sees healthy are exactly want(m), and returns for each
// the time from start to the first poll that saw it (in the order of ms).
// Those that did not within d are named in the error.
func watch(ctx context.Context, start time.Time, d time.Duration, ms []*member, want func(*member) []*member) ([]time.Duration, error) {
	ctx, cancel := context.WithDeadline(ctx, start.Add(d))
	defer cancel()
	out := make([]time.Duration, len(ms))
	last := make([]string, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		w := ids(want(m))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				v, err := m.view(ctx)
				if err == nil && slices.Equal(v.alive, w) && slices.Equal(v.healthy, w) {
					out[i] = time.Since(start)
					return
				}
				last[i] = fmt.Sprintf("%s sees alive %v, healthy %v (err %v)", m.id, v.alive, v.healthy, err)
				if procs.Sleep(ctx, pollEvery) != nil {
					out[i] = -1
					return
				}
			}
		}()
	}
	wg.Wait()
	var missed []string
	for i, t := range out {
		if t < 0 {
			missed = append(missed, last[i])
		}
	}
	if len(missed) > 0 {
		return out, fmt.Errorf("%d of %d nodes not there after %v:\n  %s", len(missed), len(ms), d, strings.Join(missed, "\n  "))
	}
	return out, nil
}

func ids(ms []*member) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.id)
	}
	slices.Sort(out)
	return out
}

// spread is the median and the largest of ds.
func spread(ds []time.Duration) (median, largest time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0, 0
	}
	return s[len(s)/2], s[len(s)-1]
}

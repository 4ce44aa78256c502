// Package pace spaces background work to a rate, so that walks over the
// whole location table (repair passes, dumps, counts) leave live traffic
// its share of every shard.
package pace

import (
	"context"
	"time"
)

// Pacer spaces work to a rate, sleeping in slices of at least a
// millisecond so high rates do not spin. One goroutine uses a Pacer.
type Pacer struct {
	every time.Duration
	next  time.Time
}

// New paces at most perSecond items a second (at least 1).
func New(perSecond int) *Pacer {
	return &Pacer{every: time.Second / time.Duration(max(perSecond, 1)), next: time.Now()}
}

// Wait returns when n more items may be done, or with ctx's error once ctx
// ends. After a stall (the caller was slower than the rate for more than a
// second) the pace starts afresh rather than bursting to catch up.
func (p *Pacer) Wait(ctx context.Context, n int) error {
	p.next = p.next.Add(p.every * time.Duration(n))
	if d := time.Until(p.next); d > time.Millisecond {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	} else if d < -time.Second {
		p.next = time.Now()
	}
	return ctx.Err()
}

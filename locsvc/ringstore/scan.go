package ringstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/locsvc/locsvc/internal/pace"
	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/ring"
)

// A scan visits every record of the ring once without a global set of the
// keys seen: each shard's key listing (metadump) is walked in turn, and a
// key is taken only on the shard that is its first live replica on one
// ring snapshot, taken when the scan starts. Every key has exactly one
// such shard on that snapshot, and each shard is walked once, so no key is
// taken twice whatever happens meanwhile. Every write is sent to the first
// live replica, and repair brings there what reached only the others, so
// each record is found where it is taken.
//
// The record taken is read through the store (Get: every replica, merged,
// read repair queued), so it is what a Lookup returns at that moment, not
// one replica's copy.
//
// When the ring changes during a scan, the snapshot still decides: a key
// is never taken twice, but one whose first replica the old snapshot named
// may be missed if that shard no longer holds it (it left, or came back
// empty before repair refilled it), and a shard that joined after the
// start is not walked. A shard that cannot be listed is reported after the
// others have been walked. Records written or removed during the scan may
// or may not be seen, as in any scan of a live table.

// ScanOptions say what a Scan walks and how fast.
type ScanOptions struct {
	// Shards, when not nil, limits the scan to the keys whose first live
	// replica is one of the shards at these addresses: on a node, the
	// shards it fronts, so that the nodes' scans, summed, cover the ring
	// once and each node reads only its own shards' listings.
	Shards []string
	// Rate is the most records read a second (at least 1).
	Rate int
	// Local hands over the copy the walked shard holds instead of the
	// record merged across its replicas: one read of the shard per
	// scanBatch records instead of R reads per record, for figures that
	// may lag a write still on its way to that replica (a node's
	// periodic counts).
	Local bool
}

// scanBatch is how many records one step of a scan reads, concurrently,
// between waits of the pacer.
const scanBatch = 100

// scanParallel bounds a scan's reads in flight: enough to fill the
// pipelined connections, few enough that live calls share them.
const scanParallel = 16

// Records implements locsvc.Walker: a Scan of the whole ring.
func (s *Store) Records(ctx context.Context, rate int, fn func(locsvc.BindingSet) error) error {
	return s.Scan(ctx, ScanOptions{Rate: rate}, fn)
}

// Scan calls fn with the merged record of every key the ring holds (see
// the comment above for which keys and when), in no particular order, at
// most opt.Rate records a second. It stops at the first error fn returns,
// or when ctx ends, and returns that error. A shard that cannot be listed
// and records that cannot be read do not stop it: the rest is walked, and
// the error returned then names what was left out.
func (s *Store) Scan(ctx context.Context, opt ScanOptions, fn func(locsvc.BindingSet) error) error {
	r := s.src.Ring()
	pacer := pace.New(opt.Rate)
	var errs []error
	for _, sh := range r.Shards() {
		if !sh.Healthy || (opt.Shards != nil && !slices.Contains(opt.Shards, sh.Addr)) {
			// An unhealthy shard is nobody's first live replica.
			continue
		}
		err := s.scanShard(ctx, r, sh, opt.Local, pacer, fn)
		var stop stopErr
		switch {
		case errors.As(err, &stop):
			return stop.err
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stopErr carries fn's error out of scanShard, told apart from the
// shard's own.
type stopErr struct{ err error }

func (e stopErr) Error() string { return e.err.Error() }

// scanShard takes the keys of sh whose first live replica on r is sh.
func (s *Store) scanShard(ctx context.Context, r *ring.Ring, sh ring.Shard, local bool, pacer *pace.Pacer, fn func(locsvc.BindingSet) error) error {
	keys, err := s.listKeys(ctx, sh.Addr, locsvc.IsStoreKey)
	if err != nil {
		return fmt.Errorf("list keys of %s: %w", sh.Addr, err)
	}
	keys = firstReplicaOf(r, sh.ID, keys)
	sets := make([]locsvc.BindingSet, scanBatch)
	errs := make([]error, scanBatch)
	failed, firstErr := 0, error(nil)
	for i := 0; i < len(keys); i += scanBatch {
		batch := keys[i:min(i+scanBatch, len(keys))]
		if err := pacer.Wait(ctx, len(batch)); err != nil {
			return err
		}
		if local {
			s.getLocal(ctx, sh.Addr, batch, sets, errs)
		} else {
			s.getBatch(ctx, batch, sets, errs)
		}
		for j := range batch {
			if errs[j] != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if failed++; firstErr == nil {
					firstErr = errs[j]
				}
				continue
			}
			if err := fn(sets[j]); err != nil {
				return stopErr{err}
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of the %d records first on %s could not be read: %w", failed, len(keys), sh.Addr, firstErr)
	}
	return nil
}

// firstReplicaOf keeps, in place, the keys whose first live replica on r
// is the shard with ID id.
func firstReplicaOf(r *ring.Ring, id string, keys []string) []string {
	var buf [1]ring.Shard
	out := keys[:0]
	for _, k := range keys {
		if first := r.ReplicaSet(k, 1, buf[:0]); len(first) == 1 && first[0].ID == id {
			out = append(out, k)
		}
	}
	return out
}

// getBatch reads keys through the store, at most scanParallel at a time,
// into sets and errs (by index).
func (s *Store) getBatch(ctx context.Context, keys []string, sets []locsvc.BindingSet, errs []error) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(scanParallel, len(keys)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				sets[i], errs[i] = s.Get(ctx, keys[i])
			}
		}()
	}
	for i := range keys {
		next <- i
	}
	close(next)
	wg.Wait()
}

// getLocal reads keys from the one shard at addr, into sets and errs (by
// index). A key gone since it was listed is an empty set.
func (s *Store) getLocal(ctx context.Context, addr string, keys []string, sets []locsvc.BindingSet, errs []error) {
	items, err := getMulti(ctx, s.client(addr), keys, s.cfg.Now)
	now := s.cfg.Now()
	for i, k := range keys {
		sets[i], errs[i] = locsvc.BindingSet{}, err
		if it, ok := items[k]; ok && err == nil {
			sets[i] = locsvc.Compact(s.decode(k, addr, it.Value), now)
		}
	}
}

package ringstore

import (
	"context"
	"fmt"

	"github.com/locsvc/locsvc/internal/pace"
	"github.com/locsvc/locsvc/locsvc"
)

// Walk reads every locsvc record one shard holds (any shard of the ring,
// by its address), at most rate records a second, and hands each to fn
// as that shard holds it: one replica's copy, not the merged record. It
// is for work that must visit records by where they live rather than by
// key, as repair does; the SIP front end's NAT keepalives find the
// bindings whose home node is gone, or their own after a restart, this
// way. It stops early when ctx ends.
func (s *Store) Walk(ctx context.Context, shard string, rate int, fn func(key string, set locsvc.BindingSet)) error {
	keys, err := s.listKeys(ctx, shard, locsvc.IsStoreKey)
	if err != nil {
		return fmt.Errorf("list keys of %s: %w", shard, err)
	}
	c := s.client(shard)
	pacer := pace.New(rate)
	for i := 0; i < len(keys); i += repairBatch {
		batch := keys[i:min(i+repairBatch, len(keys))]
		if err := pacer.Wait(ctx, len(batch)); err != nil {
			return err
		}
		items, err := getMulti(ctx, c, batch, s.cfg.Now)
		if err != nil {
			return fmt.Errorf("read %s: %w", shard, err)
		}
		for key, it := range items {
			fn(key, s.decode(key, shard, it.Value))
		}
	}
	return nil
}

package locsvc

import "context"

// Store keeps one BindingSet per key. It knows the merge algebra, not the
// registrar rules: the service reads, applies a REGISTER, and merges the
// result back, so every implementation (the embedded map, the replicated
// memcached ring) converges the same way under concurrent writers.
//
// The read and the write are one call (Update) so that a replicated store
// can write each replica with what it read from it (memcached's CAS token)
// instead of reading it again.
type Store interface {
	// Get returns what is stored under key, merged across replicas and
	// compacted. A missing key is an empty set and no error. An error means
	// no replica could be read.
	Get(ctx context.Context, key string) (BindingSet, error)
	// Update reads key as Get does, passes the result to change, and merges
	// what change returns into what is stored (see Merge), returning the
	// stored result. An error from change is returned as is and nothing is
	// written. Any other error means the read failed or the write was not
	// acknowledged by enough replicas; it may still have reached some,
	// which is harmless because merging it again gives the same result.
	// change may run more than once and must not keep cur.
	Update(ctx context.Context, key string, change func(cur BindingSet) (BindingSet, error)) (BindingSet, error)
}

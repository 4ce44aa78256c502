package locsvc

import "context"

// Store keeps one BindingSet per key. It knows the merge algebra, not the
// registrar rules: the service reads, applies a REGISTER, and merges the
// result back, so every implementation (the embedded map, the replicated
// memcached ring) converges the same way under concurrent writers.
type Store interface {
	// Get returns what is stored under key, merged across replicas and
	// compacted. A missing key is an empty set and no error. An error means
	// no replica could be read.
	Get(ctx context.Context, key string) (BindingSet, error)
	// Merge joins set into what is stored under key (see Merge) and returns
	// the stored result. An error means the write was not acknowledged by
	// enough replicas; it may still have reached some, which is harmless
	// because merging it again later gives the same result.
	Merge(ctx context.Context, key string, set BindingSet) (BindingSet, error)
}

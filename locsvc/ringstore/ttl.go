package ringstore

import "time"

// memcached reads an expiration above 30 days as an absolute Unix time.
const maxRelativeTTL = 30 * 24 * time.Hour

// ttlFor is the memcached expiration (relative seconds) for a record whose
// latest entry lapses at latest: a record outlives its contents by grace so
// that clock skew between nodes never drops a binding early, and an empty
// record lives only briefly.
func ttlFor(latest, now time.Time, grace time.Duration) int32 {
	d := latest.Sub(now) + grace
	d = min(max(d, time.Second), maxRelativeTTL)
	return int32((d + time.Second - 1) / time.Second)
}

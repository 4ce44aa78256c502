package ring

import (
	"fmt"
	"hash/fnv"
	"testing"
)

// BenchmarkReplicaSet is the hot path: n=3 over 64 shards (target <= 200
// ns/op, 0 allocs/op). 2^20 keys touch every partition, so the walk table is
// as big as in production and mostly outside L1/L2.
func BenchmarkReplicaSet(b *testing.B) {
	keys := testKeys(1 << 20)
	cases := []struct {
		name   string
		mutate func(i int, s *Shard)
	}{
		{"plain", func(int, *Shard) {}},
		{"zones4", func(i int, s *Shard) { s.Zone = fmt.Sprintf("z%d", i%4) }},
		{"weighted", func(i int, s *Shard) { s.Weight = 1 + i%3 }},
		{"quarter-down", func(i int, s *Shard) { s.Healthy = i%4 != 0 }},
	}
	for _, tc := range cases {
		for _, shards := range []int{10, 64, 256} {
			b.Run(fmt.Sprintf("%s/shards=%d/n=3", tc.name, shards), func(b *testing.B) {
				ss := testShards(shards)
				for i := range ss {
					tc.mutate(i, &ss[i])
				}
				r := New(ss)
				buf := make([]Shard, 0, 3)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					buf = r.ReplicaSet(keys[i&(1<<20-1)], 3, buf)
					i++
				}
			})
		}
	}
}

// BenchmarkWalkUncached is the cost of a partition's first lookup in a new
// snapshot: the full rendezvous walk over every shard.
func BenchmarkWalkUncached(b *testing.B) {
	for _, shards := range []int{10, 64, 256} {
		b.Run(fmt.Sprintf("shards=%d/n=3", shards), func(b *testing.B) {
			r := New(testShards(shards))
			var us, ts [3]uint64
			p := uint32(0)
			b.ReportAllocs()
			for b.Loop() {
				r.pick(partitionHash(p), 3, true, us[:0], ts[:0])
				p++
			}
		})
	}
}

// BenchmarkBalance reports max/mean primary keys per shard for 1,000,000 keys
// on 10 equal shards (target <= 1.05).
func BenchmarkBalance(b *testing.B) {
	keys := testKeys(1_000_000)
	r := New(testShards(10))
	var ratio float64
	for b.Loop() {
		ratio = maxOverMean(primaryCounts(r, keys), 10, len(keys))
	}
	b.ReportMetric(ratio, "max/mean")
}

// BenchmarkMovement reports keys moved when an 11th shard joins 10, over the
// optimum 1/11 (target <= 1.1), for the primary and for an n=2 replica set.
func BenchmarkMovement(b *testing.B) {
	keys := testKeys(1_000_000)
	before, after := New(testShards(10)), New(testShards(11))
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			var ratio float64
			for b.Loop() {
				ratio = movedFraction(before, after, keys, n) * 11
			}
			b.ReportMetric(ratio, "moved/optimal")
		})
	}
}

func BenchmarkKeyHash(b *testing.B) {
	key := "loc:sip:alice.smith@voip.example.com" // 36 bytes
	b.Run("keyHash", func(b *testing.B) {
		b.SetBytes(int64(len(key)))
		var h uint64
		for b.Loop() {
			h += keyHash(key)
		}
		_ = h
	})
	b.Run("fnv1a-inline", func(b *testing.B) {
		b.SetBytes(int64(len(key)))
		var h uint64
		for b.Loop() {
			h += fnv1a(key)
		}
		_ = h
	})
	b.Run("hash/fnv", func(b *testing.B) {
		b.SetBytes(int64(len(key)))
		b.ReportAllocs()
		var h uint64
		for b.Loop() {
			f := fnv.New64a()
			f.Write([]byte(key))
			h += f.Sum64()
		}
		_ = h
	})
}

func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func BenchmarkNew(b *testing.B) {
	ss := testShards(64)
	b.ReportAllocs()
	for b.Loop() {
		New(ss)
	}
}

func BenchmarkOwnership(b *testing.B) {
	for _, shards := range []int{10, 64} {
		// A fresh snapshot: what Membership pays when it reports ownership
		// after a change.
		b.Run(fmt.Sprintf("cold/shards=%d/n=3", shards), func(b *testing.B) {
			ss := testShards(shards)
			for b.Loop() {
				New(ss).Ownership(3)
			}
		})
		b.Run(fmt.Sprintf("warm/shards=%d/n=3", shards), func(b *testing.B) {
			r := New(testShards(shards))
			for b.Loop() {
				r.Ownership(3)
			}
		})
	}
}

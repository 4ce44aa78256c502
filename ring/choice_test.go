package ring

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
)

// This file keeps the measurement behind the algorithm choice (see doc.go)
// reproducible: a classic virtual-node token ring, compared with the
// package's ring on the same keys and shards.

// tokenRing is the groupcache/dskit style ring: vnodes tokens per shard,
// binary search for the key's hash, walk clockwise for distinct shards.
type tokenRing struct {
	tokens []uint64
	owner  []int32
	n      int
}

func newTokenRing(shards []Shard, vnodes int) *tokenRing {
	type tok struct {
		t uint64
		o int32
	}
	toks := make([]tok, 0, len(shards)*vnodes)
	for i, s := range shards {
		for v := range vnodes {
			// "index:id", not id+index: "a1"+"0" and "a"+"10" must differ.
			toks = append(toks, tok{keyHash(strconv.Itoa(v) + ":" + s.ID), int32(i)})
		}
	}
	slices.SortFunc(toks, func(a, b tok) int {
		if a.t < b.t {
			return -1
		}
		if a.t > b.t {
			return 1
		}
		return int(a.o - b.o)
	})
	tr := &tokenRing{n: len(shards)}
	for _, t := range toks {
		tr.tokens = append(tr.tokens, t.t)
		tr.owner = append(tr.owner, t.o)
	}
	return tr
}

func (tr *tokenRing) replicas(key string, n int, out []int32) []int32 {
	out = out[:0]
	h := keyHash(key)
	i, _ := slices.BinarySearch(tr.tokens, h)
	for range tr.tokens {
		if len(out) == n || len(out) == tr.n {
			break
		}
		if i == len(tr.tokens) {
			i = 0
		}
		if o := tr.owner[i]; !slices.Contains(out, o) {
			out = append(out, o)
		}
		i++
	}
	return out
}

func (tr *tokenRing) moved(after *tokenRing, keys []string, n int) float64 {
	moved := 0
	var a, b []int32
	for _, k := range keys {
		b = tr.replicas(k, n, b)
		a = after.replicas(k, n, a)
		for _, x := range a {
			if !slices.Contains(b, x) {
				moved++
			}
		}
	}
	return float64(moved) / float64(len(keys)*n)
}

// perKey is rendezvous hashing without partitions: the walk scored with the
// key's own hash, O(shards) per lookup.
func perKey(r *Ring, key string, n int) (top [3]int) {
	var us, ts [3]uint64
	for i, c := range r.pick(keyHash(key), n, true, us[:0], ts[:0]) {
		top[i] = r.index(c)
	}
	return top
}

// BenchmarkChoice compares the token ring at several vnode counts with the
// package ring: lookup cost at 64 shards, build cost, balance on 10 shards
// over 1M keys, and movement 10 -> 11 shards for n=2.
func BenchmarkChoice(b *testing.B) {
	keys := testKeys(1_000_000)
	b.Run("hrw-per-key/lookup64", func(b *testing.B) {
		r := New(testShards(64))
		i := 0
		for b.Loop() {
			perKey(r, keys[i&(1<<16-1)], 3)
			i++
		}
	})
	b.Run("hrw-per-key/quality10", func(b *testing.B) {
		var bal, mv float64
		for b.Loop() {
			r, r11 := New(testShards(10)), New(testShards(11))
			counts := make(map[int]int)
			moved := 0
			for _, k := range keys {
				before, after := perKey(r, k, 2), perKey(r11, k, 2)
				counts[before[0]]++
				for _, x := range after[:2] {
					id := r11.shards[x].ID
					if id != r.shards[before[0]].ID && id != r.shards[before[1]].ID {
						moved++
					}
				}
			}
			mx := 0
			for _, c := range counts {
				mx = max(mx, c)
			}
			bal = float64(mx) / (float64(len(keys)) / 10)
			mv = float64(moved) / float64(2*len(keys)) * 11
		}
		b.ReportMetric(bal, "max/mean")
		b.ReportMetric(mv, "moved/optimal")
	})
	for _, vn := range []int{64, 256, 1024, 4096} {
		name := fmt.Sprintf("token/vnodes=%d", vn)
		b.Run(name+"/lookup64", func(b *testing.B) {
			tr := newTokenRing(testShards(64), vn)
			out := make([]int32, 0, 3)
			i := 0
			for b.Loop() {
				out = tr.replicas(keys[i&(1<<16-1)], 3, out)
				i++
			}
		})
		b.Run(name+"/build64", func(b *testing.B) {
			ss := testShards(64)
			for b.Loop() {
				newTokenRing(ss, vn)
			}
		})
		b.Run(name+"/quality10", func(b *testing.B) {
			var bal, mv float64
			for b.Loop() {
				tr := newTokenRing(testShards(10), vn)
				counts := make(map[int32]int)
				out := make([]int32, 0, 1)
				for _, k := range keys {
					out = tr.replicas(k, 1, out)
					counts[out[0]]++
				}
				mx := 0
				for _, c := range counts {
					mx = max(mx, c)
				}
				bal = float64(mx) / (float64(len(keys)) / 10)
				mv = tr.moved(newTokenRing(testShards(11), vn), keys, 2) * 11
			}
			b.ReportMetric(bal, "max/mean")
			b.ReportMetric(mv, "moved/optimal")
		})
	}
}

package ring

import (
	"fmt"
	"slices"
	"testing"
)

// FuzzReplicaSet: arbitrary keys and shard sets must not panic, must give
// distinct healthy shards of the promised count, must not depend on input
// order, and must agree with the reference walk.
func FuzzReplicaSet(f *testing.F) {
	f.Add("loc:sip:alice@example.com", []byte{1, 0, 1, 2, 1, 1, 3, 2, 0}, uint8(2))
	f.Add("", []byte{}, uint8(3))
	f.Add("k", []byte{7, 7, 7, 7, 7, 7}, uint8(9))
	f.Fuzz(func(t *testing.T, key string, spec []byte, n uint8) {
		var ss []Shard
		for i := 0; i+2 < len(spec) && len(ss) < 64; i += 3 {
			zone := ""
			if z := spec[i+1] % 4; z > 0 {
				zone = fmt.Sprint("z", z)
			}
			ss = append(ss, Shard{
				ID:      fmt.Sprint("s", spec[i]), // repeats allowed: duplicates collapse
				Node:    fmt.Sprint("n", spec[i+1]),
				Zone:    zone,
				Healthy: spec[i+2]&1 == 1,
				Weight:  int(spec[i+2]>>1) % 4,
			})
		}
		r := New(ss)
		rev := slices.Clone(ss)
		slices.Reverse(rev)
		r2 := New(rev)

		got := r.ReplicaSet(key, int(n), nil)
		if want := min(int(n), r.Healthy()); len(got) != want {
			t.Fatalf("len %d, want %d", len(got), want)
		}
		seen := map[string]bool{}
		for _, s := range got {
			if seen[s.ID] || !s.Healthy {
				t.Fatalf("duplicate or unhealthy shard in %v", ids(got))
			}
			seen[s.ID] = true
		}
		if !slices.Equal(got, r2.ReplicaSet(key, int(n), nil)) {
			t.Fatal("result depends on input order")
		}
		want := refWalk(r, partitionHash(partitionOf(key)), int(n), true)
		if !slices.Equal(ids(got), idsOf(r, want)) {
			t.Fatalf("got %v, reference %v", ids(got), idsOf(r, want))
		}
		pref := r.Preference(key, int(n), nil)
		if len(pref) != min(int(n), r.Len()) {
			t.Fatalf("Preference len %d", len(pref))
		}
		if !slices.Equal(pref, r2.Preference(key, int(n), nil)) {
			t.Fatal("Preference depends on input order")
		}
	})
}

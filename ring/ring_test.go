package ring

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestEmptyAndDegenerate(t *testing.T) {
	var nilRing *Ring
	empty := New(nil)
	down := New([]Shard{{ID: "a", Healthy: false}, {ID: "b", Healthy: false}})
	buf := make([]Shard, 0, 4)
	for _, tc := range []struct {
		name     string
		r        *Ring
		n        int
		wantRS   int
		wantPref int
	}{
		{"nil ring", nilRing, 3, 0, 0},
		{"empty ring", empty, 3, 0, 0},
		{"n=0", New(testShards(5)), 0, 0, 0},
		{"n<0", New(testShards(5)), -1, 0, 0},
		{"n > shards", New(testShards(2)), 5, 2, 2},
		{"all down", down, 2, 0, 2},
		{"one shard", New(testShards(1)), 3, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.ReplicaSet("k", tc.n, buf); len(got) != tc.wantRS {
				t.Errorf("ReplicaSet: got %d shards, want %d", len(got), tc.wantRS)
			}
			if got := tc.r.Preference("k", tc.n, buf); len(got) != tc.wantPref {
				t.Errorf("Preference: got %d shards, want %d", len(got), tc.wantPref)
			}
			_ = tc.r.Ownership(tc.n)
		})
	}
	if nilRing.Len() != 0 || nilRing.Shards() != nil || nilRing.Healthy() != 0 {
		t.Error("nil ring is not empty")
	}
	if !nilRing.Equal(empty) {
		t.Error("nil and empty rings differ")
	}
}

// TestMatchesReference checks every fast path against refWalk over rings with
// and without zones, weights and down shards, for n from 1 past the ring size.
func TestMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		shards, zones int
		weighted      bool
		down          float64
	}{
		{1, 0, false, 0}, {3, 0, false, 0}, {10, 0, false, 0.3}, {64, 0, false, 0.25},
		{10, 3, false, 0}, {10, 2, false, 0.3}, {40, 20, false, 0.2}, {12, 1, false, 0},
		{10, 0, true, 0}, {30, 4, true, 0.3}, {5, 5, false, 0.5}, {8, 3, true, 1},
	} {
		name := fmt.Sprintf("shards=%d/zones=%d/weighted=%v/down=%.2f", tc.shards, tc.zones, tc.weighted, tc.down)
		t.Run(name, func(t *testing.T) {
			r := New(randomShards(rng, tc.shards, tc.zones, tc.weighted, tc.down))
			buf := make([]Shard, 0, tc.shards+2)
			keys := 300
			if tc.shards > 12 {
				keys = 60 // n runs to shards+1, and the race detector is slow
			}
			for i := range keys {
				key := fmt.Sprintf("key-%d", i)
				p := partitionOf(key)
				for n := 1; n <= tc.shards+1; n++ {
					for _, healthy := range []bool{true, false} {
						want := refWalk(r, partitionHash(p), n, healthy)
						var got []Shard
						if healthy {
							got = r.ReplicaSet(key, n, buf)
						} else {
							got = r.Preference(key, n, buf)
						}
						if !slices.Equal(ids(got), idsOf(r, want)) {
							t.Fatalf("key %q n=%d healthyOnly=%v: got %v, want %v", key, n, healthy, ids(got), idsOf(r, want))
						}
					}
				}
			}
		})
	}
}

func idsOf(r *Ring, idx []int) []string {
	out := make([]string, len(idx))
	for i, x := range idx {
		out[i] = r.shards[x].ID
	}
	return out
}

func TestDeterministicRegardlessOfOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ss := randomShards(rng, 20, 3, true, 0.2)
	a := New(ss)
	shuffled := slices.Clone(ss)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	// A duplicate entry for an existing ID must not change anything either.
	b := New(append(shuffled, ss[7]))
	if !a.Equal(b) {
		t.Fatalf("shards differ:\n%v\n%v", a.Shards(), b.Shards())
	}
	if !slices.IsSortedFunc(a.Shards(), func(x, y Shard) int { return compareIDs(x.ID, y.ID) }) {
		t.Error("Shards() not sorted by ID")
	}
	ba, bb := make([]Shard, 0, 3), make([]Shard, 0, 3)
	for _, k := range testKeys(5000) {
		if !slices.Equal(a.ReplicaSet(k, 3, ba), b.ReplicaSet(k, 3, bb)) {
			t.Fatalf("ReplicaSet(%q) differs between input orders", k)
		}
		if !slices.Equal(a.Preference(k, 3, ba), b.Preference(k, 3, bb)) {
			t.Fatalf("Preference(%q) differs between input orders", k)
		}
	}
}

func compareIDs(a, b string) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

func TestDuplicateIDsCollapseDeterministically(t *testing.T) {
	x := Shard{ID: "m:1", Addr: "m:1", Node: "b", Healthy: true}
	y := Shard{ID: "m:1", Addr: "m:1", Node: "a", Healthy: false}
	for _, in := range [][]Shard{{x, y}, {y, x}} {
		r := New(in)
		if r.Len() != 1 || r.Shards()[0].Node != "a" {
			t.Fatalf("got %v, want the shard announced by node a", r.Shards())
		}
	}
}

// TestGolden pins placement. Every node of every version must agree, so a
// change here re-homes records in a running cluster: it needs a migration,
// not a new golden value.
func TestGolden(t *testing.T) {
	r := New(testShards(10))
	got := map[string][]string{}
	buf := make([]Shard, 0, 3)
	for _, k := range []string{"", "loc:sip:alice@example.com", "loc:sip:bob@example.org"} {
		got[k] = ids(r.ReplicaSet(k, 3, buf))
	}
	want := map[string][]string{
		"":                          {"10.0.0.8:11211", "10.0.0.2:11211", "10.0.0.7:11211"},
		"loc:sip:alice@example.com": {"10.0.0.4:11211", "10.0.0.7:11211", "10.0.0.8:11211"},
		"loc:sip:bob@example.org":   {"10.0.0.9:11211", "10.0.0.10:11211", "10.0.0.8:11211"},
	}
	hashes := map[string]uint64{"": 0xf490368aba8bfeac, "loc:sip:alice@example.com": 0x2534b3a7dade998a}
	for k, h := range hashes {
		if keyHash(k) != h {
			t.Errorf("keyHash(%q) = %#x, want %#x", k, keyHash(k), h)
		}
	}
	// The weighted and zoned walks have their own arithmetic to pin.
	ss := testShards(10)
	for i := range ss {
		ss[i].Weight = 1 + i%3
		ss[i].Zone = fmt.Sprint("z", i%3)
	}
	got["weighted+zoned"] = ids(New(ss).ReplicaSet("loc:sip:alice@example.com", 3, buf))
	want["weighted+zoned"] = []string{"10.0.0.4:11211", "10.0.0.9:11211", "10.0.0.8:11211"}
	for k := range want {
		if !slices.Equal(got[k], want[k]) {
			t.Errorf("ReplicaSet(%q) = %q, want %q", k, got[k], want[k])
		}
	}
}

func TestDistinctAndSized(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 50 {
		ss := randomShards(rng, 1+rng.IntN(30), rng.IntN(5), rng.IntN(2) == 0, rng.Float64()/2)
		r := New(ss)
		for i := range 200 {
			n := 1 + rng.IntN(8)
			got := r.ReplicaSet(fmt.Sprint(i), n, nil)
			if len(got) != min(n, r.Healthy()) {
				t.Fatalf("len %d, want min(%d, %d)", len(got), n, r.Healthy())
			}
			seen := map[string]bool{}
			for _, s := range got {
				if seen[s.ID] || !s.Healthy {
					t.Fatalf("duplicate or unhealthy shard in %v", ids(got))
				}
				seen[s.ID] = true
			}
			if len(r.Preference(fmt.Sprint(i), n, nil)) != min(n, r.Len()) {
				t.Fatal("Preference short")
			}
		}
	}
}

// TestSloppyQuorum: a down shard's place goes to the next shard of the walk,
// and keys it did not hold do not move.
func TestSloppyQuorum(t *testing.T) {
	ss := testShards(10)
	up := New(ss)
	ss[3].Healthy = false
	down := New(ss)
	for _, k := range testKeys(20000) {
		pref := down.Preference(k, 10, nil)
		var want []string
		for _, s := range pref {
			if s.Healthy && len(want) < 3 {
				want = append(want, s.ID)
			}
		}
		got := ids(down.ReplicaSet(k, 3, nil))
		if !slices.Equal(got, want) {
			t.Fatalf("%q: got %v, want healthy prefix of preference %v", k, got, want)
		}
		before := ids(up.ReplicaSet(k, 3, nil))
		if !slices.Contains(before, ss[3].ID) && !slices.Equal(before, got) {
			t.Fatalf("%q moved from %v to %v though shard 3 held no replica", k, before, got)
		}
	}
}

func TestZones(t *testing.T) {
	for _, tc := range []struct {
		zones, n int
	}{{3, 3}, {3, 2}, {2, 3}, {4, 3}} {
		t.Run(fmt.Sprintf("zones=%d/n=%d", tc.zones, tc.n), func(t *testing.T) {
			ss := testShards(12)
			for i := range ss {
				ss[i].Zone = fmt.Sprintf("z%d", i%tc.zones)
			}
			ss[0].Healthy = false // zone z0 still has other shards
			r := New(ss)
			for _, k := range testKeys(5000) {
				got := r.ReplicaSet(k, tc.n, nil)
				zones := map[string]bool{}
				for _, s := range got {
					zones[s.Zone] = true
				}
				if want := min(tc.n, tc.zones); len(zones) != want {
					t.Fatalf("%q: %d zones in %v, want %d", k, len(zones), got, want)
				}
				if len(got) != tc.n {
					t.Fatalf("%q: got %d shards, want %d", k, len(got), tc.n)
				}
			}
		})
	}
}

func TestRemovingShardMovesOnlyItsKeys(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, zones := range []int{0, 3} {
		ss := randomShards(rng, 12, zones, false, 0)
		before := New(ss)
		gone := ss[5]
		after := New(slices.Delete(slices.Clone(ss), 5, 6))
		moved := 0
		keys := testKeys(20000)
		for _, k := range keys {
			b, a := ids(before.ReplicaSet(k, 2, nil)), ids(after.ReplicaSet(k, 2, nil))
			if !slices.Contains(b, gone.ID) {
				if !slices.Equal(a, b) {
					t.Fatalf("zones=%d %q: %v -> %v without the removed shard", zones, k, b, a)
				}
			} else {
				moved++
			}
		}
		if frac := float64(moved) / float64(len(keys)); frac > 2.0/12*1.2 {
			t.Errorf("zones=%d: %.3f of keys had the removed shard, want about 2/12", zones, frac)
		}
	}
}

func TestBalanceAndWeights(t *testing.T) {
	own := New(testShards(10)).Ownership(1)
	for id, share := range own {
		if math.Abs(share-0.1) > 0.005 {
			t.Errorf("shard %s owns %.4f, want 0.1±0.005", id, share)
		}
	}
	ss := testShards(4)
	for i := range ss {
		ss[i].Weight = i + 1
	}
	r := New(ss)
	own = r.Ownership(1)
	for i, s := range ss {
		want := float64(i+1) / 10
		if got := own[s.ID]; math.Abs(got-want)/want > 0.05 {
			t.Errorf("weight %d owns %.4f, want %.4f±5%%", s.Weight, got, want)
		}
	}
}

func TestOwnership(t *testing.T) {
	ss := testShards(6)
	ss[2].Healthy = false
	r := New(ss)
	for _, n := range []int{1, 2, 3, 5, 9} {
		own := r.Ownership(n)
		if len(own) != 6 {
			t.Fatalf("n=%d: %d entries, want 6", n, len(own))
		}
		sum := 0.0
		for _, v := range own {
			sum += v
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Errorf("n=%d: shares sum to %v", n, sum)
		}
		if own[ss[2].ID] != 0 {
			t.Errorf("n=%d: unhealthy shard owns %v", n, own[ss[2].ID])
		}
	}
	if got := r.Ownership(5)[ss[0].ID]; math.Abs(got-0.2) > 1e-9 {
		t.Errorf("n >= healthy: share %v, want exactly 1/5", got)
	}
}

// TestScoreIndependence: the shard that takes over a down primary's keys
// must be spread evenly over all others, which needs scores of different
// shards to be independent. With 10 shards each ordered pair should get
// 1/90 of the hashes.
func TestScoreIndependence(t *testing.T) {
	r := New(testShards(10))
	const samples = 900_000
	pairs := map[[2]int]int{}
	var us, ts [2]uint64
	for i := range uint64(samples) {
		got := r.pick(fmix64(i), 2, true, us[:0], ts[:0])
		pairs[[2]int{r.index(got[0]), r.index(got[1])}]++
	}
	if len(pairs) != 90 {
		t.Fatalf("%d ordered pairs seen, want 90", len(pairs))
	}
	for p, c := range pairs {
		if dev := math.Abs(float64(c)/(samples/90) - 1); dev > 0.05 {
			t.Errorf("pair %v: %d hashes, %.1f%% off the mean", p, c, dev*100)
		}
	}
}

func TestNoAllocs(t *testing.T) {
	for _, tc := range []struct{ shards, zones, n int }{{64, 0, 3}, {64, 4, 3}, {20, 0, 10}, {20, 3, 6}} {
		ss := testShards(tc.shards)
		for i := range ss {
			if tc.zones > 0 {
				ss[i].Zone = fmt.Sprint(i % tc.zones)
			}
		}
		r := New(ss)
		buf := make([]Shard, 0, tc.n)
		r.ReplicaSet("warm", tc.n, buf)
		if a := testing.AllocsPerRun(1000, func() { buf = r.ReplicaSet("loc:sip:alice@example.com", tc.n, buf) }); a != 0 {
			t.Errorf("%+v: %v allocs per ReplicaSet", tc, a)
		}
		if a := testing.AllocsPerRun(1000, func() { buf = r.Preference("loc:sip:alice@example.com", tc.n, buf) }); a != 0 {
			t.Errorf("%+v: %v allocs per Preference", tc, a)
		}
	}
}

func TestMovementOnJoin(t *testing.T) {
	keys := testKeys(200_000)
	before, after := New(testShards(10)), New(testShards(11))
	for _, n := range []int{1, 2, 3} {
		if ratio := movedFraction(before, after, keys, n) * 11; ratio > 1.1 {
			t.Errorf("n=%d: moved/optimal = %.3f, want <= 1.1", n, ratio)
		}
	}
}

func TestNegLog2(t *testing.T) {
	for _, x := range []uint64{1, 2, 3, 1 << 20, 1<<63 - 1, 1 << 63, 3 << 62, math.MaxUint64} {
		want := -math.Log2(float64(x) / math.Exp2(64))
		got := float64(negLog2Q32(x)) / math.Exp2(32)
		if math.Abs(got-want) > 1e-6 {
			t.Errorf("negLog2(%#x) = %v, want %v", x, got, want)
		}
	}
}

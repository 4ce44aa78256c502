package locsvc

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"
)

// The benchmarks below replay the per-REGISTER hot path on plain data, to
// keep an eye on allocations: every fresh []Binding is expensive because a
// Binding is a large struct.

// benchRequest is a typical single-contact REGISTER, as sipp sends them.
func benchRequest(aor string, cseq uint32) Request {
	return Request{
		AoR:       aor,
		Contacts:  []Contact{{URI: "sip:alice@192.0.2.10:5060;transport=udp"}},
		CallID:    "f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
		CSeq:      cseq,
		Received:  "192.0.2.10:5060",
		Transport: "udp",
		UserAgent: "Example-Phone/1.2.34",
	}
}

// benchSet is what one such REGISTER stores, plus n-1 more live contacts.
func benchSet(b *testing.B, n int) BindingSet {
	b.Helper()
	lim := testLimits()
	var set BindingSet
	for i := range n {
		req := benchRequest(testAoR, uint32(i+1))
		req.Contacts[0].URI = fmt.Sprintf("sip:alice@192.0.2.%d:5060", 10+i)
		reg, err := Check(req, lim)
		if err != nil {
			b.Fatal(err)
		}
		if set, err = Apply(set, reg, t0, lim, "locsvc-1"); err != nil {
			b.Fatal(err)
		}
	}
	return set
}

var sinkSet BindingSet

func BenchmarkMergeEqual(b *testing.B) {
	x, y := benchSet(b, 1), benchSet(b, 1)
	b.ReportAllocs()
	for b.Loop() {
		sinkSet = Merge(x, y)
	}
}

func BenchmarkMergeEmpty(b *testing.B) {
	x := benchSet(b, 1)
	b.ReportAllocs()
	for b.Loop() {
		sinkSet = Merge(BindingSet{}, x)
	}
}

func BenchmarkCompact(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			x := benchSet(b, n)
			b.ReportAllocs()
			for b.Loop() {
				sinkSet = Compact(x, t0)
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	x := benchSet(b, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(x); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	data, err := Encode(benchSet(b, 1))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if sinkSet, err = Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLive(b *testing.B) {
	x := benchSet(b, 1)
	b.ReportAllocs()
	for b.Loop() {
		sinkSet.Bindings = x.Live(t0)
	}
}

func BenchmarkCheck(b *testing.B) {
	req, lim := benchRequest(testAoR, 1), testLimits()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Check(req, lim); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReplicaPath is what the replicated store does around one
// REGISTER whose two replicas agree: decode the shared read, merge and
// compact it, apply, then per replica merge, compact, encode and compare
// with what is stored, and merge the acknowledgements.
func BenchmarkReplicaPath(b *testing.B) {
	lim := testLimits()
	stored, err := Encode(benchSet(b, 1))
	if err != nil {
		b.Fatal(err)
	}
	reg, err := Check(benchRequest(testAoR, 2), lim)
	if err != nil {
		b.Fatal(err)
	}
	now := t0.Add(time.Second)
	b.ReportAllocs()
	for b.Loop() {
		held, err := Decode(stored)
		if err != nil {
			b.Fatal(err)
		}
		cur := Compact(Merge(Merge(BindingSet{}, held), held), now)
		next, err := Apply(cur, reg, now, lim, "locsvc-1")
		if err != nil {
			b.Fatal(err)
		}
		result := next
		for range 2 {
			m := Compact(Merge(held, next), now)
			val, err := Encode(m)
			if err != nil {
				b.Fatal(err)
			}
			if bytes.Equal(val, stored) {
				b.Fatal("nothing changed")
			}
			result = Merge(result, m)
		}
		sinkSet.Bindings = Compact(result, now).Live(now)
	}
}

func benchService(b *testing.B) *Service {
	b.Helper()
	store := NewMemStore(func() time.Time { return t0 }, time.Hour)
	b.Cleanup(func() { store.Close() })
	svc, err := NewService(store, testLimits(), "locsvc-1")
	if err != nil {
		b.Fatal(err)
	}
	svc.now = func() time.Time { return t0 }
	return svc
}

func BenchmarkRegisterNewAoR(b *testing.B) {
	svc := benchService(b)
	reqs := make([]Request, b.N)
	for i := range reqs {
		reqs[i] = benchRequest(fmt.Sprintf("sip:user%d@example.com", i), 1)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := svc.Register(ctx, reqs[i]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRegisterSameAoR(b *testing.B) {
	svc := benchService(b)
	ctx := context.Background()
	req := benchRequest(testAoR, 1)
	b.ReportAllocs()
	for b.Loop() {
		req.CSeq++ // a refresh: same Call-ID, higher CSeq
		if _, err := svc.Register(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

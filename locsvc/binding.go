package locsvc

import (
	"cmp"
	"slices"
	"time"
)

// Binding is one contact of an AoR, or a tombstone for a removed one.
type Binding struct {
	// ID is the binding's identity within the AoR (see BindingID).
	ID string
	// URI is the contact as the UA sent it, without header parameters.
	URI string
	// Expires is when the binding lapses. For a tombstone it is when the
	// tombstone may be forgotten.
	Expires time.Time
	// Updated orders writes to the same binding (last writer wins). It is
	// at least one nanosecond newer than every entry the writer had seen,
	// so a write made after a read supersedes it even across clock skew.
	Updated time.Time
	// Q is the q-value in thousandths (0..1000).
	Q         int
	CallID    string
	CSeq      uint32
	Path      []string
	Received  string
	Transport string
	Instance  string
	RegID     uint32
	UserAgent string
	// Node is the node that accepted the REGISTER: the binding's home.
	Node    string
	Removed bool
	// Retain is how long the entry is kept once it has lapsed or been
	// removed: until every write it superseded has expired too, so a stale
	// replica merged later cannot bring an older version back.
	Retain time.Time
}

// Live reports whether b is a current binding at time now.
func (b *Binding) Live(now time.Time) bool {
	return !b.Removed && b.Expires.After(now)
}

// BindingSet is everything stored for one AoR: bindings and tombstones,
// sorted by ID with no ID twice. Functions in this package never modify a
// set they are given, and what they return may share its Bindings with a
// set they were given (Merge and Compact hand back an input that needs no
// change). A set is therefore read-only once made: the stores share decoded
// replica reads between goroutines. To edit one, copy it first, as Apply
// does; the stores hand their callers copies of what they hold.
type BindingSet struct {
	AoR      string
	Bindings []Binding
}

// Live returns the current bindings, best q first and, within equal q,
// most recently updated first: the order a proxy should try them in.
//
// The result is always new, never part of s: callers keep and edit it.
func (s BindingSet) Live(now time.Time) []Binding {
	n := countLive(s.Bindings, now)
	if n == 0 {
		return nil
	}
	out := make([]Binding, 0, n)
	for _, b := range s.Bindings {
		if b.Live(now) {
			out = append(out, b)
		}
	}
	slices.SortStableFunc(out, func(a, b Binding) int {
		if c := cmp.Compare(b.Q, a.Q); c != 0 {
			return c
		}
		return b.Updated.Compare(a.Updated)
	})
	return out
}

func countLive(bs []Binding, now time.Time) int {
	n := 0
	for i := range bs {
		if bs[i].Live(now) {
			n++
		}
	}
	return n
}

// keepUntil is when Compact may forget b.
func (b *Binding) keepUntil() time.Time {
	if b.Retain.After(b.Expires) {
		return b.Retain
	}
	return b.Expires
}

// LatestExpiry is the time after which nothing in s matters any more;
// stores use it to expire the record as a whole.
func (s BindingSet) LatestExpiry() time.Time {
	var t time.Time
	for i := range s.Bindings {
		if k := s.Bindings[i].keepUntil(); k.After(t) {
			t = k
		}
	}
	return t
}

func (s BindingSet) find(id string) (int, bool) {
	return slices.BinarySearchFunc(s.Bindings, id, func(b Binding, id string) int {
		return cmp.Compare(b.ID, id)
	})
}

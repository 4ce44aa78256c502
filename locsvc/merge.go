package locsvc

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Merge joins two versions of an AoR's binding set. Per binding ID the
// newer entry wins (see newer), tombstones included, so
//
//	Merge(a, b) == Merge(b, a)                        (commutative)
//	Merge(a, Merge(b, c)) == Merge(Merge(a, b), c)    (associative)
//	Merge(a, a) == a                                  (idempotent)
//
// and replicas that saw writes in different orders converge once they have
// seen the same writes, whatever path the writes took (read repair, repair
// after a membership change, concurrent read-merge-write).
//
// Both inputs must be sorted by ID without duplicates, as every BindingSet
// is; the result is too. Inputs are not modified. When one input already
// holds the merge, as when replicas agree, it is returned as is rather than
// copied (see BindingSet), clipped so that appending to the result cannot
// write into the input's spare capacity.
func Merge(a, b BindingSet) BindingSet {
	out := BindingSet{AoR: a.AoR}
	if out.AoR == "" || (b.AoR != "" && b.AoR < out.AoR) {
		// Equal in practice; the rule only keeps Merge commutative if a
		// key collision ever put two AoRs under one key.
		out.AoR = b.AoR
	}
	switch {
	case covers(a.Bindings, b.Bindings, true):
		out.Bindings = slices.Clip(a.Bindings)
	case covers(b.Bindings, a.Bindings, false):
		// Only where b wins outright: on a tie the walk below keeps a's
		// entry, which may differ in what compareBindings ignores (a
		// time's location, a nil or empty Path).
		out.Bindings = slices.Clip(b.Bindings)
	default:
		out.Bindings = mergeBindings(a.Bindings, b.Bindings)
	}
	return out
}

// covers reports whether x already holds the merge of x and y: every entry
// of y has one in x with its ID that is newer or, if ties count, as new.
func covers(x, y []Binding, ties bool) bool {
	i := 0
	for j := range y {
		for i < len(x) && x[i].ID < y[j].ID {
			i++
		}
		if i == len(x) || x[i].ID != y[j].ID {
			return false
		}
		if c := compareBindings(&x[i], &y[j]); c < 0 || (c == 0 && !ties) {
			return false
		}
	}
	return true
}

// mergeBindings is the walk behind Merge, into a new slice of the exact
// size so the result is allocated once.
func mergeBindings(a, b []Binding) []Binding {
	out := make([]Binding, 0, mergedLen(a, b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		x, y := &a[i], &b[j]
		switch c := strings.Compare(x.ID, y.ID); {
		case c < 0:
			out = append(out, *x)
			i++
		case c > 0:
			out = append(out, *y)
			j++
		default:
			if newer(y, x) {
				out = append(out, *y)
			} else {
				out = append(out, *x)
			}
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// mergedLen counts the distinct IDs in a and b.
func mergedLen(a, b []Binding) int {
	n, i, j := 0, 0, 0
	for i < len(a) && j < len(b) {
		c := strings.Compare(a[i].ID, b[j].ID)
		if c <= 0 {
			i++
		}
		if c >= 0 {
			j++
		}
		n++
	}
	return n + len(a) - i + len(b) - j
}

// newer reports whether x supersedes y. The order is total over every
// field, so Merge never depends on argument order: first the write
// version, then a removal beats an update made in the same nanosecond, and
// the remaining fields only break ties between distinct writes that share a
// timestamp.
func newer(x, y *Binding) bool {
	return compareBindings(x, y) > 0
}

func compareBindings(x, y *Binding) int {
	if c := x.Updated.Compare(y.Updated); c != 0 {
		return c
	}
	if x.Removed != y.Removed {
		if x.Removed {
			return 1
		}
		return -1
	}
	return cmp.Or(
		strings.Compare(x.Node, y.Node),
		x.Expires.Compare(y.Expires),
		cmp.Compare(x.CSeq, y.CSeq),
		strings.Compare(x.CallID, y.CallID),
		strings.Compare(x.URI, y.URI),
		cmp.Compare(x.Q, y.Q),
		slices.Compare(x.Path, y.Path),
		strings.Compare(x.Received, y.Received),
		strings.Compare(x.Transport, y.Transport),
		strings.Compare(x.Instance, y.Instance),
		cmp.Compare(x.RegID, y.RegID),
		strings.Compare(x.UserAgent, y.UserAgent),
		x.Retain.Compare(y.Retain),
	)
}

// MaxTombstones bounds the dead entries (removed, or lapsed but retained)
// kept per AoR so that a UA cycling through contacts cannot grow a record
// without limit; past it the oldest are forgotten first.
const MaxTombstones = 64

// Compact drops what no longer matters at time now: entries whose
// retention is over (see Binding.Retain), then the oldest dead entries
// beyond MaxTombstones. Dropping an entry at the end of its retention
// never resurrects anything: by then every write it superseded has expired
// as well (see retention in the registrar rules).
func Compact(s BindingSet, now time.Time) BindingSet {
	n, dead := 0, 0 // entries kept, and how many of those are dead
	for i := range s.Bindings {
		if b := &s.Bindings[i]; b.keepUntil().After(now) {
			n++
			if !b.Live(now) {
				dead++
			}
		}
	}
	if n == len(s.Bindings) && dead <= MaxTombstones {
		// Nothing to drop, the common case: s is the answer, shared rather
		// than copied (see BindingSet) and clipped as in Merge.
		s.Bindings = slices.Clip(s.Bindings)
		return s
	}
	out := BindingSet{AoR: s.AoR}
	if n > 0 {
		out.Bindings = make([]Binding, 0, n)
	}
	for i := range s.Bindings {
		if b := &s.Bindings[i]; b.keepUntil().After(now) {
			out.Bindings = append(out.Bindings, *b)
		}
	}
	if dead <= MaxTombstones {
		return out
	}
	ages := make([]time.Time, 0, dead)
	for i := range out.Bindings {
		if b := &out.Bindings[i]; !b.Live(now) {
			ages = append(ages, b.Updated)
		}
	}
	slices.SortFunc(ages, func(a, b time.Time) int { return b.Compare(a) })
	cutoff := ages[MaxTombstones-1] // the oldest dead entry kept
	kept := out.Bindings[:0]
	for _, b := range out.Bindings {
		if !b.Live(now) && b.Updated.Before(cutoff) {
			continue
		}
		kept = append(kept, b)
	}
	out.Bindings = kept
	return out
}

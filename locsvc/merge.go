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
// is; the result is too. Inputs are not modified.
func Merge(a, b BindingSet) BindingSet {
	out := BindingSet{AoR: a.AoR}
	if out.AoR == "" || (b.AoR != "" && b.AoR < out.AoR) {
		// Equal in practice; the rule only keeps Merge commutative if a
		// key collision ever put two AoRs under one key.
		out.AoR = b.AoR
	}
	out.Bindings = make([]Binding, 0, max(len(a.Bindings), len(b.Bindings)))
	i, j := 0, 0
	for i < len(a.Bindings) && j < len(b.Bindings) {
		x, y := &a.Bindings[i], &b.Bindings[j]
		switch c := strings.Compare(x.ID, y.ID); {
		case c < 0:
			out.Bindings = append(out.Bindings, *x)
			i++
		case c > 0:
			out.Bindings = append(out.Bindings, *y)
			j++
		default:
			if newer(y, x) {
				out.Bindings = append(out.Bindings, *y)
			} else {
				out.Bindings = append(out.Bindings, *x)
			}
			i++
			j++
		}
	}
	out.Bindings = append(out.Bindings, a.Bindings[i:]...)
	out.Bindings = append(out.Bindings, b.Bindings[j:]...)
	return out
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
	out := BindingSet{AoR: s.AoR}
	dead := 0
	for i := range s.Bindings {
		b := &s.Bindings[i]
		if !b.keepUntil().After(now) {
			continue
		}
		if !b.Live(now) {
			dead++
		}
		out.Bindings = append(out.Bindings, *b)
	}
	if dead <= MaxTombstones {
		return out
	}
	var ages []time.Time
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

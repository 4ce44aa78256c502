package locsvc

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The operator's calls, Kamailio's ul.dump, ul.rm and stats usrloc: every
// AoR with its bindings, a removal that is not a phone's, and counts.

// Walker is a Store that can hand over every record it holds, which the
// operator's calls (Dump, Counts) need. Both stores are Walkers.
type Walker interface {
	// Records calls fn with the record of every key stored, merged and
	// compacted as Get returns it, each key once, at most rate records a
	// second (at least 1). A record may hold no live binding. It stops
	// at the first error fn returns and returns that error, or when ctx
	// ends. A part of the store that cannot be read does not stop it:
	// the rest is walked, and then an error names what was left out.
	Records(ctx context.Context, rate int, fn func(BindingSet) error) error
}

// Dump calls fn with every AoR that has live bindings, each once, its live
// bindings as a Lookup would return them, at most rate records a second
// so that live traffic keeps priority. An AoR registered or removed while
// the dump runs may or may not be seen. An error fn returns stops the dump
// and is returned as is; a store that could not be read whole is reported
// after the rest, as Unavailable.
func (s *Service) Dump(ctx context.Context, rate int, fn func(Result) error) error {
	return s.walk(ctx, rate, func(set BindingSet, now time.Time) error {
		live := set.Live(now)
		if len(live) == 0 {
			return nil
		}
		return fn(Result{AoR: set.AoR, Bindings: live, Now: now, Known: true})
	})
}

// Counts are the AoRs that have live bindings, and those bindings.
type Counts struct {
	AoRs, Bindings int
}

// Add counts set's live bindings at now, and set itself if it has any.
func (c *Counts) Add(set BindingSet, now time.Time) {
	if n := countLive(set.Bindings, now); n > 0 {
		c.AoRs++
		c.Bindings += n
	}
}

// Counts walks the store as Dump does and counts what it would show.
func (s *Service) Counts(ctx context.Context, rate int) (Counts, error) {
	var c Counts
	err := s.walk(ctx, rate, func(set BindingSet, now time.Time) error {
		c.Add(set, now)
		return nil
	})
	if err != nil {
		return Counts{}, err
	}
	return c, nil
}

// walk runs fn on every record, telling fn's errors (returned as they are)
// from the store's (Unavailable, or the context's).
func (s *Service) walk(ctx context.Context, rate int, fn func(BindingSet, time.Time) error) error {
	w, ok := s.store.(Walker)
	if !ok {
		return &Error{Kind: KindUnavailable, Reason: "this store cannot list its records"}
	}
	if rate < 1 {
		return invalid("rate", "must be at least 1 record a second, got %d", rate)
	}
	var stopped error
	err := w.Records(ctx, rate, func(set BindingSet) error {
		if err := fn(set, s.now()); err != nil {
			stopped = err
			return err
		}
		return nil
	})
	switch {
	case stopped != nil:
		return stopped
	case err == nil:
		return nil
	case ctx.Err() != nil:
		// The cause says who ended it: the caller, or the server stopping.
		return fmt.Errorf("walk cut short: %w", context.Cause(ctx))
	}
	return &Error{Kind: KindUnavailable, Reason: "could not read the whole table: " + err.Error(), Err: err}
}

// Remove takes bindings of an AoR out on every replica, for an operator
// (locsvc rm, Kamailio's ul.rm): every live binding when contacts is
// empty, else those whose contact URI equals one of contacts (RFC 3261
// §19.1.4). It returns the AoR's live bindings afterwards, how many it
// removed, and the contacts that matched no live binding (not an error:
// nothing of theirs is there to remove).
//
// It is Unbind with the versions the store's own read found, so the
// removal is a tombstone written after everything read on each replica:
// repair, read repair or a stale replica merged later cannot bring the
// bindings back, and the phone's own next REGISTER (a higher CSeq) binds
// again, as after Kamailio's ul.rm. Like a REGISTER with "Contact: *", it
// removes the bindings the read saw; one written concurrently stays.
// When nothing matches, nothing is written.
func (s *Service) Remove(ctx context.Context, aor string, contacts []string) (Result, int, []string, error) {
	norm, err := s.checkAoR(aor)
	if err != nil {
		return Result{}, 0, nil, err
	}
	ids := make([]string, len(contacts))
	for i, c := range contacts {
		field := fmt.Sprintf("contacts[%d]", i)
		if err := checkLen(field, c, s.limits.MaxURILen, LimitURILength); err != nil {
			return Result{}, 0, nil, err
		}
		if ids[i], err = BindingID(c, "", 0); err != nil {
			return Result{}, 0, nil, invalid(field, "%v", err)
		}
	}
	r := &removal{svc: s, ids: ids}
	stored, err := s.store.Update(ctx, StoreKey(norm), r.change)
	var unmatched []string
	for i, ok := range r.matched {
		if !ok {
			unmatched = append(unmatched, contacts[i])
		}
	}
	switch {
	case errors.Is(err, errNothingToUnbind):
		return Result{AoR: norm, Bindings: r.live, Now: r.now, Known: r.known}, 0, unmatched, nil
	case err != nil:
		return Result{}, 0, nil, Unavailable(err)
	}
	return Result{AoR: norm, Bindings: stored.Live(r.now), Now: r.now, Known: true}, r.removed, unmatched, nil
}

// removal is one Remove's change to the store, its state in one value as
// for update.
type removal struct {
	svc     *Service
	ids     []string // the contacts named, as BindingIDs; none: all
	now     time.Time
	removed int
	matched []bool
	live    []Binding
	known   bool
}

func (r *removal) change(cur BindingSet) (BindingSet, error) {
	r.now = r.svc.now()
	var refs []BindingRef
	refs, r.matched = chosen(cur, r.ids, r.now)
	next, n := Unbind(cur, refs, r.now, r.svc.limits, r.svc.node)
	r.removed = n
	if n == 0 {
		r.live, r.known = cur.Live(r.now), len(cur.Bindings) > 0
		return cur, errNothingToUnbind
	}
	return next, nil
}

// chosen names, in the versions cur holds, the live bindings an operator's
// removal takes: all of them when ids is empty, else those whose contact
// URI has one of ids as its BindingID (the URI's canonical form, whether
// or not the binding is a flow). matched tells which ids found a binding.
func chosen(cur BindingSet, ids []string, now time.Time) (refs []BindingRef, matched []bool) {
	matched = make([]bool, len(ids))
	for _, b := range cur.Bindings {
		if !b.Live(now) {
			continue
		}
		take := len(ids) == 0
		if !take {
			uri, err := BindingID(b.URI, "", 0)
			if err != nil {
				continue // stored by another version, perhaps: not an operator's to name
			}
			for i, id := range ids {
				if id == uri {
					matched[i], take = true, true
				}
			}
		}
		if take {
			refs = append(refs, BindingRef{ID: b.ID, Updated: b.Updated})
		}
	}
	return refs, matched
}

package locsvc

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Service is the location service core: registrar rules over a Store. It is
// what the gRPC/HTTP API and the SIP front end call.
type Service struct {
	store  Store
	limits Limits
	node   string
	now    func() time.Time
}

// NewService serves the location table held in store. node names this node
// in the bindings it writes.
func NewService(store Store, limits Limits, node string) (*Service, error) {
	if err := limits.Validate(); err != nil {
		return nil, err
	}
	return &Service{store: store, limits: limits, node: node, now: time.Now}, nil
}

// Limits returns the registrar policy in force.
func (s *Service) Limits() Limits { return s.limits }

// Result is the outcome of a Register, Lookup or Unbind: the AoR's live
// bindings, best q first, as of Now.
type Result struct {
	AoR      string
	Bindings []Binding
	Now      time.Time
	// Known: the AoR had bindings recently, live or not (entries are
	// retained after they lapse), so a caller can tell "temporarily
	// unavailable" (480) from "no such user" (404).
	Known bool
}

// Register applies one REGISTER. Refused requests return an *Error and
// change nothing stored.
func (s *Service) Register(ctx context.Context, req Request) (Result, error) {
	reg, err := Check(req, s.limits)
	if err != nil {
		return Result{}, err
	}
	key := StoreKey(reg.AoR)
	if reg.IsQuery() {
		cur, err := s.store.Get(ctx, key)
		if err != nil {
			return Result{}, Unavailable(err)
		}
		now := s.now()
		return Result{AoR: reg.AoR, Bindings: cur.Live(now), Now: now}, nil
	}
	u := &update{svc: s, reg: reg}
	stored, err := s.store.Update(ctx, key, u.change)
	if u.refused != nil {
		return Result{}, u.refused
	}
	if err != nil {
		return Result{}, Unavailable(err)
	}
	return Result{AoR: reg.AoR, Bindings: stored.Live(u.now), Now: u.now}, nil
}

// update is one REGISTER's change to the store. Its state lives in one
// value rather than in variables a closure captures, each of which would
// be a heap allocation of its own on every REGISTER.
type update struct {
	svc     *Service
	reg     Registration
	now     time.Time
	refused error // the registrar's answer, told apart from the store's
}

func (u *update) change(cur BindingSet) (BindingSet, error) {
	u.now = u.svc.now()
	next, err := Apply(cur, u.reg, u.now, u.svc.limits, u.svc.node)
	u.refused = err
	return next, err
}

// Lookup returns the live bindings of an AoR. An unknown AoR is not an
// error: it has no bindings.
func (s *Service) Lookup(ctx context.Context, aor string) (Result, error) {
	norm, err := s.checkAoR(aor)
	if err != nil {
		return Result{}, err
	}
	set, err := s.store.Get(ctx, StoreKey(norm))
	if err != nil {
		return Result{}, Unavailable(err)
	}
	now := s.now()
	return Result{AoR: norm, Bindings: set.Live(now), Now: now, Known: len(set.Bindings) > 0}, nil
}

// checkAoR normalises the AoR a Lookup or Unbind names.
func (s *Service) checkAoR(aor string) (string, error) {
	if err := checkLen("aor", aor, s.limits.MaxURILen, LimitURILength); err != nil {
		return "", err
	}
	norm, err := NormalizeAoR(aor)
	if err != nil {
		return "", invalid("aor", "%v", err)
	}
	return norm, nil
}

// Unbind removes the named versions of an AoR's bindings on every replica
// (see the function Unbind for what a ref matches and why) and returns the
// AoR's live bindings afterwards and how many it removed. A ref that
// matches nothing is not an error: the binding was written again, removed
// or lapsed since the caller saw it, which is what the exact match is for.
// Refused requests return an *Error and change nothing stored.
//
// When no ref matches there is nothing to write, and none is attempted:
// change answers errNothingToUnbind, which the Store contract guarantees
// writes nothing, rather than handing back the set it read. Merging that
// set would change nothing stored either, but it would still run the
// replicated store's write: replicas that missed the read asked again
// (spares in their place when they fail), replicas that disagree
// rewritten, a write counted, and the answer delayed by all that. Front
// ends send refs for bindings they saw a while ago, so a no-op is common,
// and should cost one read. The answer then comes from that read, the
// same one a removal would have been decided on.
func (s *Service) Unbind(ctx context.Context, aor string, refs []BindingRef) (Result, int, error) {
	norm, err := s.checkAoR(aor)
	if err != nil {
		return Result{}, 0, err
	}
	// A copy: IDs are put in the form BindingID gives them, and the
	// caller's slice is the caller's.
	checked := make([]BindingRef, len(refs))
	for i, r := range refs {
		if r.ID == "" {
			return Result{}, 0, invalid(fmt.Sprintf("bindings[%d].id", i), "empty: name the binding (see BindingID)")
		}
		// An ID BindingID could not have made matches nothing: refused as
		// the gRPC and HTTP calls refuse the contact it stands for, and
		// any other spelling of a contact matches as it does there.
		id, err := BindingID(SplitBindingID(r.ID))
		if err != nil {
			return Result{}, 0, invalid(fmt.Sprintf("bindings[%d].id", i), "%v", err)
		}
		if r.Updated.IsZero() {
			// Matches nothing either, so almost surely a caller that forgot
			// to copy the version it saw; better told than ignored.
			return Result{}, 0, invalid(fmt.Sprintf("bindings[%d].updated_at", i), "missing: the version of the binding to remove")
		}
		checked[i] = BindingRef{ID: id, Updated: r.Updated}
	}
	u := &unbind{svc: s, refs: checked}
	stored, err := s.store.Update(ctx, StoreKey(norm), u.change)
	switch {
	case errors.Is(err, errNothingToUnbind):
		return Result{AoR: norm, Bindings: u.live, Now: u.now, Known: u.known}, 0, nil
	case err != nil:
		return Result{}, 0, Unavailable(err)
	}
	return Result{AoR: norm, Bindings: stored.Live(u.now), Now: u.now, Known: len(stored.Bindings) > 0}, u.removed, nil
}

// errNothingToUnbind tells Unbind's store update to write nothing.
var errNothingToUnbind = errors.New("no binding matched: nothing to write")

// unbind is one Unbind's change to the store, its state in one value as
// for update.
type unbind struct {
	svc     *Service
	refs    []BindingRef
	now     time.Time
	removed int
	// What the read held, for the answer when nothing is written: the
	// store's own result is then not available, and change must not keep
	// cur itself.
	live  []Binding
	known bool
}

func (u *unbind) change(cur BindingSet) (BindingSet, error) {
	u.now = u.svc.now()
	next, n := Unbind(cur, u.refs, u.now, u.svc.limits, u.svc.node)
	u.removed = n
	if n == 0 {
		u.live, u.known = cur.Live(u.now), len(cur.Bindings) > 0
		return cur, errNothingToUnbind
	}
	return next, nil
}

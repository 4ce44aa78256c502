package locsvc

import (
	"context"
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

// Result is the outcome of a Register or Lookup: the AoR's live bindings,
// best q first, as of Now.
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
	if err := checkLen("aor", aor, s.limits.MaxURILen, LimitURILength); err != nil {
		return Result{}, err
	}
	norm, err := NormalizeAoR(aor)
	if err != nil {
		return Result{}, invalid("aor", "%v", err)
	}
	set, err := s.store.Get(ctx, StoreKey(norm))
	if err != nil {
		return Result{}, Unavailable(err)
	}
	now := s.now()
	return Result{AoR: norm, Bindings: set.Live(now), Now: now, Known: len(set.Bindings) > 0}, nil
}

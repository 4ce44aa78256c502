package sipfront

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/sipfront/internal/core"
)

// Unbinder is a Locator that also removes bindings found unreachable, on
// every replica and only in the version the caller saw (locsvc.Unbind):
// *locsvc.Service and api.Client both are. Without it a front end still
// serves, and bindings whose flow ended stay until they expire (a call to
// one then fails at its home node, 430, and the others are tried).
type Unbinder interface {
	Unbind(ctx context.Context, aor string, refs []locsvc.BindingRef) (locsvc.Result, int, error)
}

var _ Unbinder = (*locsvc.Service)(nil)

// flowBindings remembers, for each connection, the bindings registered
// over it that nothing but that connection reaches: the RFC 5626 flows
// (a contact with reg-id) and every binding made over WebSocket (its
// contact is a made-up .invalid host, RFC 7118 §5). When the connection
// ends they are removed through the Unbinder, so that no node of the farm
// sends a call to them any more (RFC 5626 §5.3: the flow failed). A
// binding registered again since, over another connection, is another
// version and stays.
type flowBindings struct {
	unbind  Unbinder // nil: nothing removed
	timeout time.Duration
	log     *slog.Logger
	stats   *core.Counters

	mu     sync.Mutex
	byConn map[uint64]map[flowKey]time.Time // version (Updated) of each binding
	// running counts removals in flight, so that Close can let them end.
	running sync.WaitGroup
}

type flowKey struct{ aor, id string }

func newFlowBindings(loc Locator, timeout time.Duration, log *slog.Logger, stats *core.Counters) *flowBindings {
	u, _ := loc.(Unbinder)
	return &flowBindings{unbind: u, timeout: timeout, log: log, stats: stats, byConn: make(map[uint64]map[flowKey]time.Time)}
}

// connBound reports a binding only its connection reaches.
func connBound(b *locsvc.Binding, transport string) bool {
	return isWebSocket(transport) || b.RegID != 0
}

// registered takes what a REGISTER bound (core.Config.Registered).
func (f *flowBindings) registered(r core.Registration) {
	if r.In.Conn == 0 || f.unbind == nil {
		return
	}
	bound := r.Bound()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range bound {
		b := &bound[i]
		if !connBound(b, r.In.Transport) {
			continue
		}
		m := f.byConn[r.In.Conn]
		if m == nil {
			m = make(map[flowKey]time.Time)
			f.byConn[r.In.Conn] = m
		}
		m[flowKey{r.AoR, b.ID}] = b.Updated
	}
}

// ended is told of a connection that closed (connTable.closed): its
// bindings are removed in the background, one Unbind per AoR, each
// bounded by the request timeout.
func (f *flowBindings) ended(ci connInfo) {
	f.mu.Lock()
	m := f.byConn[ci.id]
	delete(f.byConn, ci.id)
	f.mu.Unlock()
	if len(m) == 0 {
		return
	}
	refs := make(map[string][]locsvc.BindingRef)
	for k, v := range m {
		refs[k.aor] = append(refs[k.aor], locsvc.BindingRef{ID: k.id, Updated: v})
	}
	f.running.Add(1)
	go func() {
		defer f.running.Done()
		for aor, rs := range refs {
			ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
			_, n, err := f.unbind.Unbind(ctx, aor, rs)
			cancel()
			if err != nil {
				f.log.Warn("sip: bindings of a closed flow not removed", "aor", aor, "remote", ci.remote, "err", err)
				continue
			}
			f.stats.FlowsUnbound.Add(uint64(n))
			f.log.Debug("sip: flow closed, bindings removed", "aor", aor, "remote", ci.remote, "transport", ci.transport, "removed", n)
		}
	}()
}

// wait lets the removals in flight end, for at most d.
func (f *flowBindings) wait(d time.Duration) { waitAtMost(&f.running, d) }

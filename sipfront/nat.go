package sipfront

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/sipuri"
	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/sipfront/internal/core"
)

// NAT keepalives: a phone behind NAT is reached through the pinhole its
// REGISTER opened, to the node that accepted it, and the pinhole closes
// when nothing crosses it for a while. So that node, and only that node,
// sends the phone a keepalive once per interval: the phone's home keeps
// its own pinhole open, and a farm of N nodes sends one keepalive per
// phone, not N (what operators of Kamailio and OpenSIPS clusters meet:
// every node pinging every contact). When the home node is gone, one
// other node (Peers.Pinger) takes its phones over.

// NATPing configures NAT keepalives.
type NATPing struct {
	// Interval is how often each phone behind NAT is pinged; 0 (the
	// default) sends none. The pings of all phones are spread evenly over
	// the interval, never sent in a burst.
	Interval time.Duration
	// Method is NATPingOptions (the default: an OPTIONS request, whose
	// answer proves the phone is there) or NATPingCRLF (a 4-byte
	// "\r\n\r\n", which keeps the pinhole open and gets no answer).
	Method string
	// Misses, when positive, removes a binding (through every node)
	// after that many OPTIONS in a row went unanswered. OPTIONS only.
	Misses int
}

// NAT keepalive methods.
const (
	NATPingOptions = "options"
	NATPingCRLF    = "crlf"
)

// CheckNATPing reports what a NATPing may not be, each error a
// *FieldError naming NATPingInterval, NATPingMethod or NATPingMisses, so
// that a caller may name them its own way (the node names flags).
func CheckNATPing(n NATPing) []error {
	var errs []error
	if n.Interval != 0 && n.Interval < time.Second {
		errs = append(errs, &FieldError{Field: "NATPingInterval", Err: fmt.Errorf("0 (off) or at least 1s, got %v", n.Interval)})
	}
	switch n.Method {
	case "", NATPingOptions, NATPingCRLF:
	default:
		errs = append(errs, &FieldError{Field: "NATPingMethod", Err: fmt.Errorf("%q is not %s or %s", n.Method, NATPingOptions, NATPingCRLF)})
	}
	if n.Misses < 0 {
		errs = append(errs, &FieldError{Field: "NATPingMisses", Err: fmt.Errorf("must not be negative, got %d", n.Misses)})
	}
	if n.Misses > 0 && n.Method == NATPingCRLF {
		errs = append(errs, &FieldError{Field: "NATPingMisses", Err: errors.New("needs the options method: a CRLF keepalive gets no answer to miss")})
	}
	return errs
}

// Peers is the cluster as NAT keepalives see it.
type Peers interface {
	// Pinger names the node that pings the phones of aor whose bindings
	// name home as their home node: home itself while it is a live
	// member, else one other node every member names alike (the node
	// that fronts the AoR's first live replica), or "" for none.
	Pinger(aor, home string) string
}

// natDetected reports a binding registered over UDP from another IP than
// its contact's: a NAT rewrote the source, and the phone is reached
// through the pinhole, at the received address.
func natDetected(b *locsvc.Binding) bool {
	if !strings.EqualFold(b.Transport, "udp") || b.Received == "" {
		return false
	}
	src, err := netip.ParseAddrPort(b.Received)
	if err != nil {
		return false
	}
	u, err := sipuri.Parse(b.URI)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(strings.Trim(u.Host, "[]"))
	return err == nil && a.Unmap() != src.Addr().Unmap()
}

// natEntry is one phone this node pings.
type natEntry struct {
	uri     string
	dest    netip.AddrPort
	updated time.Time // the binding's version
	home    string
	misses  int
	waiting uint64 // the OPTIONS sent last and not answered yet (its serial), or 0
}

// natPinger pings the NATed phones of which this node is home, or has
// taken over, in a round robin that spreads them evenly over the
// interval. Before each ping it reads the binding again: a phone that
// re-registered elsewhere, unregistered or expired is dropped at its next
// turn, so two nodes never ping one phone for longer than an interval.
type natPinger struct {
	cfg    NATPing
	self   string
	peers  Peers
	loc    Locator
	unbind Unbinder
	conn   *net.UDPConn
	via    string // sent-by of the pings: the advertised address
	log    *slog.Logger
	stats  *core.Counters
	lookup time.Duration // bound on each read

	mu      sync.Mutex
	entries map[flowKey]*natEntry
	order   []flowKey // the round: entries in the order they are pinged
	added   []flowKey // entries that join the round at its next turn
	cursor  int
	carry   float64
	seq     uint64
	waiting map[uint64]flowKey // unanswered OPTIONS by serial

	// id makes this pinger's Call-IDs, branches and tags its own:
	// unique across nodes and restarts (RFC 3261 §8.1.1.4), and what its
	// answers are known by.
	id string

	busy chan struct{} // bounds the checks in flight
	stop chan struct{}
	wg   sync.WaitGroup
}

// natTick is how often the round advances: the pings of each tick are
// sent together, so this is the coarsest grain of their spread.
const natTick = 100 * time.Millisecond

// natChecksInFlight bounds the reads (and so pings) under way at once.
const natChecksInFlight = 64

func newNATPinger(cfg *Config, loc Locator, stats *core.Counters) *natPinger {
	u, _ := loc.(Unbinder)
	id := make([]byte, 6)
	rand.Read(id)
	return &natPinger{cfg: cfg.NATPing, self: cfg.NodeID, peers: cfg.Peers, loc: loc, unbind: u, log: cfg.Logger, id: hex.EncodeToString(id),
		stats: stats, lookup: cfg.RequestTimeout, entries: make(map[flowKey]*natEntry),
		waiting: make(map[uint64]flowKey), busy: make(chan struct{}, natChecksInFlight), stop: make(chan struct{})}
}

// pinger names the node that pings a binding of aor homed at home.
func (p *natPinger) pinger(aor, home string) string {
	if p.peers == nil {
		return home
	}
	return p.peers.Pinger(aor, home)
}

// start pings from conn, naming itself by via (host:port).
func (p *natPinger) start(conn *net.UDPConn, via string) {
	p.conn, p.via = conn, via
	p.wg.Add(1)
	go p.run()
}

func (p *natPinger) close() {
	close(p.stop)
	p.wg.Wait()
}

// registered takes the NATed UDP bindings a REGISTER accepted here bound.
func (p *natPinger) registered(r core.Registration) {
	if r.In.Transport != "udp" {
		return
	}
	for _, b := range r.Bound() {
		if natDetected(&b) {
			p.adopt(r.AoR, b)
		}
	}
}

// candidates offers bindings found in the store (a walk of shards after
// a node left, or after this node restarted): those this node should
// ping join the round.
func (p *natPinger) candidates(aor string, bs []locsvc.Binding) {
	for i := range bs {
		b := bs[i]
		if b.Live(time.Now()) && natDetected(&b) && p.pinger(aor, b.Node) == p.self {
			p.adopt(aor, b)
		}
	}
}

func (p *natPinger) adopt(aor string, b locsvc.Binding) {
	dest, err := netip.ParseAddrPort(b.Received)
	if err != nil {
		return
	}
	k := flowKey{aor, b.ID}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.entries[k]; ok {
		if b.Updated.After(e.updated) {
			// A new registration: the phone is there, perhaps behind a
			// new mapping; what the old one missed counts no more.
			delete(p.waiting, e.waiting)
			e.uri, e.dest, e.updated, e.home = b.URI, unmapped(dest), b.Updated, b.Node
			e.waiting, e.misses = 0, 0
		}
		return
	}
	p.entries[k] = &natEntry{uri: b.URI, dest: unmapped(dest), updated: b.Updated, home: b.Node}
	p.added = append(p.added, k)
	p.stats.NATPinged.Add(1)
}

func (p *natPinger) drop(k flowKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.entries[k]; ok {
		delete(p.waiting, e.waiting)
		delete(p.entries, k)
		p.stats.NATPinged.Add(-1)
	}
}

func (p *natPinger) run() {
	defer p.wg.Done()
	t := time.NewTicker(natTick)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		for _, k := range p.due() {
			select {
			case p.busy <- struct{}{}:
			default:
				p.log.Warn("sip: NAT keepalive skipped: too many checks in flight (the store is slow)", "aor", k.aor)
				continue
			}
			p.wg.Add(1)
			go func() {
				defer func() { <-p.busy; p.wg.Done() }()
				p.check(k)
			}()
		}
	}
}

// due advances the round by one tick: the entries whose turn it is, so
// that each comes once per interval and the ticks carry equal shares.
func (p *natPinger) due() []flowKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.order) == 0 {
		p.order, p.added, p.cursor = p.added, nil, 0
	}
	p.carry += float64(len(p.order)) * float64(natTick) / float64(p.cfg.Interval)
	n := int(p.carry)
	p.carry -= float64(n)
	var out []flowKey
	for range n {
		if p.cursor >= len(p.order) {
			// A new round: forget dropped entries, welcome new ones.
			kept := p.order[:0]
			for _, k := range p.order {
				if _, ok := p.entries[k]; ok {
					kept = append(kept, k)
				}
			}
			p.order, p.added, p.cursor = append(kept, p.added...), nil, 0
			if len(p.order) == 0 {
				break
			}
		}
		k := p.order[p.cursor]
		p.cursor++
		if _, ok := p.entries[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

// check is one entry's turn: read the binding again, keep it only while
// this node is its pinger, count a miss for the OPTIONS still
// unanswered (removing the binding after Misses in a row), then ping.
func (p *natPinger) check(k flowKey) {
	ctx, cancel := context.WithTimeout(context.Background(), p.lookup)
	defer cancel()
	res, err := p.loc.Lookup(ctx, k.aor)
	var b *locsvc.Binding
	if err == nil {
		for i := range res.Bindings {
			if id := res.Bindings[i].ID; id == k.id || (id == "" && bindingID(&res.Bindings[i]) == k.id) {
				b = &res.Bindings[i]
				break
			}
		}
		if b == nil || !natDetected(b) || p.pinger(k.aor, b.Node) != p.self {
			p.drop(k)
			return
		}
		p.adopt(k.aor, *b)
	}
	// A store that cannot be read does not stop the keepalives: the
	// pinhole matters more than the bookkeeping.
	p.mu.Lock()
	e, ok := p.entries[k]
	if !ok {
		p.mu.Unlock()
		return
	}
	if e.waiting != 0 {
		delete(p.waiting, e.waiting)
		e.waiting = 0
		e.misses++
		p.stats.NATMisses.Add(1)
	}
	if p.cfg.Misses > 0 && e.misses >= p.cfg.Misses && b != nil {
		p.mu.Unlock()
		p.remove(ctx, k, locsvc.BindingRef{ID: k.id, Updated: b.Updated})
		return
	}
	var msg []byte
	if p.cfg.Method == NATPingCRLF {
		msg = []byte("\r\n\r\n")
	} else {
		p.seq++
		e.waiting = p.seq
		p.waiting[p.seq] = k
		msg = p.options(e.uri, p.seq)
	}
	dest := e.dest
	p.mu.Unlock()
	if _, err := p.conn.WriteToUDPAddrPort(msg, dest); err != nil {
		p.log.Debug("sip: NAT keepalive not sent", "dest", dest, "err", err)
		return
	}
	p.stats.NATPings.Add(1)
}

// remove takes a phone that stopped answering out of the store, on every
// node, and out of the round.
func (p *natPinger) remove(ctx context.Context, k flowKey, ref locsvc.BindingRef) {
	p.drop(k)
	if p.unbind == nil {
		return
	}
	if _, n, err := p.unbind.Unbind(ctx, k.aor, []locsvc.BindingRef{ref}); err != nil {
		p.log.Warn("sip: binding that stopped answering keepalives not removed", "aor", k.aor, "err", err)
	} else if n > 0 {
		p.stats.NATUnbound.Add(uint64(n))
		p.log.Info("sip: binding removed: no answer to NAT keepalives", "aor", k.aor, "binding", k.id, "misses", p.cfg.Misses)
	}
}

// natBranch starts the branch of every keepalive OPTIONS, so that its
// answer is told from anything else arriving on the socket.
const natBranch = "z9hG4bK-lsvcnat-"

// options is the keepalive OPTIONS for contact uri, serial seq.
func (p *natPinger) options(uri string, seq uint64) []byte {
	id := p.id + "-" + strconv.FormatUint(seq, 36)
	host, _, _ := net.SplitHostPort(p.via)
	var b strings.Builder
	b.WriteString("OPTIONS " + uri + " SIP/2.0\r\n")
	b.WriteString("Via: SIP/2.0/UDP " + p.via + ";branch=" + natBranch + id + ";rport\r\n")
	b.WriteString("Max-Forwards: 70\r\n")
	b.WriteString("From: <sip:keepalive@" + host + ">;tag=" + id + "\r\n")
	b.WriteString("To: <" + uri + ">\r\n")
	b.WriteString("Call-ID: lsvcnat-" + id + "@" + host + "\r\n")
	b.WriteString("CSeq: 1 OPTIONS\r\n")
	b.WriteString("Content-Length: 0\r\n\r\n")
	return []byte(b.String())
}

// answered takes a response arriving on the socket; it reports whether
// it was the answer to a keepalive (any final answer proves the phone is
// there).
func (p *natPinger) answered(res *sip.Response) bool {
	v := res.Via()
	if v == nil {
		return false
	}
	br, _ := v.Params.Get("branch")
	id, ok := strings.CutPrefix(br, natBranch)
	if !ok {
		return false
	}
	mine, serial, ok := strings.Cut(id, "-")
	if !ok || mine != p.id {
		return true // a keepalive answer, of this node before a restart
	}
	seq, err := strconv.ParseUint(serial, 36, 64)
	if err != nil || res.StatusCode < 200 {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if k, ok := p.waiting[seq]; ok {
		delete(p.waiting, seq)
		if e, ok := p.entries[k]; ok {
			e.waiting, e.misses = 0, 0
		}
		p.stats.NATAnswers.Add(1)
	}
	return true
}

// bindingID is a binding's ID when the Locator (a remote one) left it out.
func bindingID(b *locsvc.Binding) string {
	id, _ := locsvc.BindingID(b.URI, b.Instance, b.RegID)
	return id
}

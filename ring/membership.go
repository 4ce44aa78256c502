package ring

import (
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Membership runs gossip for this node and keeps the current Ring.
//
// Decisions worth knowing:
//   - A node can start alone. When Join is set but no seed answers, Start
//     still succeeds (unless Config.RequireJoin) and the seeds are retried in
//     the background, with backoff up to 30 s, for as long as this node sees
//     no other member — at startup and also after every peer has failed, which
//     is how two halves of a healed partition find each other again.
//   - The Ring holds the shards of alive members in state joining, active or
//     restarting, with the health they announce, and of leaving members
//     marked unhealthy (see StateLeaving). A member that went away after
//     announcing restarting keeps its shards in the ring, unchanged, for the
//     grace it announced; peers probe them meanwhile. A member that left
//     for good or failed detection contributes nothing (presenceOf).
//   - A member that failed without leaving is joined again now and then
//     (reconnect.go), so that the two sides of a healed partition that
//     each kept several nodes merge again; the seeds alone would not do it.
//   - Subscribers get a snapshot only when the shards changed (Ring.Equal);
//     membership changes that do not affect placement (a router joining, a
//     state change from joining to active) do not wake repair.
type Membership struct {
	cfg Config
	ml  *memberlist.Memberlist
	log *slog.Logger
	// addr is read once after Create: memberlist's LocalNode returns its
	// live node record, which UpdateNode rewrites without our locks.
	addr string

	metaMu  sync.Mutex // serialises changes to meta and encoded
	meta    Meta
	encoded atomic.Pointer[[]byte] // what NodeMeta returns; read under memberlist's locks

	announceMu sync.Mutex // one UpdateNode at a time, so the last one sent carries the last meta

	mu      sync.Mutex // guards members and lost; held only for map updates and copies
	members map[string]memberEntry
	lost    map[string]lostMember // failed without leaving: reconnect.go

	ring    atomic.Pointer[Ring]
	buildMu sync.Mutex // one build at a time, so an older build never overwrites a newer one
	wake    chan struct{}
	subs    subscribers
	stats   counters

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

type memberEntry struct {
	Member
	since time.Time // of the last change; for a dead member, when it died
	// probed, when not nil, is the member's shard list with the health and
	// epoch this node's own probes found while the member is away for a
	// restart (health.go); it stands in for what the member last announced.
	probed []ShardStatus
}

// presence is what the entry's shards are in the ring at now.
func (e memberEntry) presence(now time.Time) (presence, time.Time) {
	return presenceOf(e.State, e.Alive, e.RestartGrace, e.since, now)
}

// shards is what the entry contributes to the ring at now, and when that
// changes by itself.
func (e memberEntry) shards(now time.Time) ([]Shard, time.Time) {
	p, until := e.presence(now)
	list := e.Shards
	if e.probed != nil {
		list = e.probed
	}
	return shardsOf(e.Member, p, list), until
}

// Start creates the memberlist, announces this node and joins the seeds.
func Start(cfg Config) (*Membership, error) {
	mc, err := cfg.memberlistConfig()
	if err != nil {
		return nil, err
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = defaultHealthInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m := &Membership{
		cfg:     cfg,
		log:     log,
		members: make(map[string]memberEntry),
		lost:    make(map[string]lostMember),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	meta := cfg.Meta
	meta.NodeID = cfg.NodeID
	meta.RestartGrace = cfg.RestartGrace
	meta.Shards = slices.Clone(meta.Shards)
	if err := m.setMeta(meta); err != nil {
		return nil, err
	}
	if cfg.HealthCheck != nil {
		// Announce real health from the first alive message on.
		m.checkHealth()
	}

	mc.Delegate = delegate{m}
	mc.Events = events{m}
	mc.LogOutput = logWriter{log}
	if m.ml, err = memberlist.Create(mc); err != nil {
		return nil, err
	}
	m.addr = m.ml.LocalNode().Address()
	m.rebuild()
	m.wg.Add(1)
	go m.builder()
	if cfg.HealthCheck != nil {
		m.wg.Add(1)
		go m.healthLoop()
	}

	every := cfg.ReconnectInterval
	if every <= 0 {
		every = mc.PushPullInterval
	}
	m.wg.Add(1)
	go m.reconnectLoop(every)

	seeds := m.seeds()
	if len(seeds) > 0 {
		if _, err := m.ml.Join(seeds); err != nil {
			if cfg.RequireJoin {
				m.Close()
				return nil, err
			}
			m.stats.joinFailures.Add(1)
			log.Warn("ring: no seed answered; retrying in the background", slog.Any("err", err))
		} else {
			// The seeds know this node now, the other members only once
			// gossip reaches them, and a broadcast lost on a loaded
			// machine leaves a member without this node's shards until a
			// periodic push/pull happens to pick it (15 s to 30 s or
			// more). One push/pull with each member the seeds told of
			// makes every member place this node's shards at once.
			m.pushToPeers()
		}
		m.wg.Add(1)
		go m.rejoinLoop(seeds)
	}
	m.rebuild()
	return m, nil
}

// seeds drops this node's own address: joining yourself "succeeds" and would
// hide that no peer was reached.
func (m *Membership) seeds() []string {
	self := m.LocalAddr()
	var out []string
	for _, s := range m.cfg.Join {
		if s = strings.TrimSpace(s); s != "" && s != self {
			out = append(out, s)
		}
	}
	return out
}

// Ring returns the current snapshot. It is never nil after Start.
func (m *Membership) Ring() *Ring { return m.ring.Load() }

// LocalAddr is the gossip address this node advertises, with the real port
// when BindAddr asked for port 0.
func (m *Membership) LocalAddr() string { return m.addr }

// Members returns every known node, this one included, sorted by NodeID.
// Nodes that left or failed stay listed with Alive false for a while.
func (m *Membership) Members() []Member {
	out := []Member{m.localMember()}
	m.mu.Lock()
	for _, e := range m.members {
		out = append(out, e.Member)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.NodeID, b.NodeID) })
	return out
}

func (m *Membership) localMember() Member {
	m.metaMu.Lock()
	meta := m.meta
	meta.Shards = slices.Clone(meta.Shards)
	m.metaMu.Unlock()
	return Member{Meta: meta, GossipAddr: m.LocalAddr(), Alive: !m.closed()}
}

// Subscribe returns a channel that receives the current snapshot at once and
// then every new one. A slow reader gets the newest snapshot, never a
// backlog, and never slows gossip. The channel is closed by cancel or Close.
func (m *Membership) Subscribe() (<-chan *Ring, func()) {
	return m.subs.add(m.Ring())
}

// SetState changes this node's announced state and gossips it. This
// node's own Ring reflects the state when SetState returns: the hand-off
// sets StateLeaving and at once reads the ring for its shards' new owners,
// which a rebuild left to the builder goroutine might not have made yet.
func (m *Membership) SetState(s State) error {
	if s > StateRestarting {
		return errors.New("ring: unknown state " + s.String())
	}
	if err := m.setState(s); err != nil {
		return err
	}
	// Once the builder runs (after Start), a rebuild here leaves its grace
	// timer valid: this node's state moves no other member's deadline.
	m.rebuild()
	m.announce(announceTimeout)
	return nil
}

// setState records s in this node's metadata, not yet gossiped.
func (m *Membership) setState(s State) error {
	if m.closed() {
		return errClosed
	}
	m.metaMu.Lock()
	defer m.metaMu.Unlock()
	meta := m.meta
	meta.State = s
	return m.setMetaLocked(meta)
}

// announceTimeout bounds how long SetState and health changes wait for the
// update to be gossiped. Not reaching it is not an error: memberlist keeps
// retransmitting, and push/pull syncs full state anyway.
const announceTimeout = 2 * time.Second

func (m *Membership) announce(timeout time.Duration) {
	m.announceMu.Lock()
	defer m.announceMu.Unlock()
	if m.closed() {
		return
	}
	if err := m.ml.UpdateNode(timeout); err != nil {
		m.log.Debug("ring: metadata update not yet gossiped", slog.Any("err", err))
	}
	m.stats.announcements.Add(1)
}

func (m *Membership) setMeta(meta Meta) error {
	m.metaMu.Lock()
	defer m.metaMu.Unlock()
	return m.setMetaLocked(meta)
}

// setMetaLocked encodes first, so metadata that does not fit is refused here
// rather than by memberlist, which panics on oversized metadata.
func (m *Membership) setMetaLocked(meta Meta) error {
	b, err := encodeMeta(meta)
	if err != nil {
		return err
	}
	m.meta = meta
	m.encoded.Store(&b)
	return nil
}

// Leave announces StateLeaving, tells the cluster this node is going
// (memberlist Leave, so peers drop it at once instead of after failure
// detection) and shuts down. timeout bounds each of the two broadcasts.
func (m *Membership) Leave(timeout time.Duration) error {
	return m.leave(StateLeaving, timeout)
}

// LeaveForRestart announces StateRestarting, leaves gossip and shuts down.
// Peers keep this node's shards in placement, as they were, for
// Config.RestartGrace: a node that comes back within it (same NodeID,
// same shards) finds a ring that never changed. timeout bounds each of
// the two broadcasts.
//
// The state is announced before memberlist's Leave, and then handed to
// every alive peer in a push/pull of its own, so that each knows it when
// it sees the node go. Gossip alone is not enough: on a loaded machine
// the broadcast can be counted as sent before a peer got it, and a peer
// that missed it takes the node as gone for good and drops its shards,
// which costs a repair (never a record: the copies are still on the
// other replicas).
func (m *Membership) LeaveForRestart(timeout time.Duration) error {
	return m.leave(StateRestarting, timeout)
}

func (m *Membership) leave(s State, timeout time.Duration) error {
	err := m.setState(s)
	if errors.Is(err, errClosed) {
		return err
	}
	if err == nil {
		m.announce(timeout)
		m.pushToPeers()
	}
	// Under announceMu, so a concurrent Close cannot shut memberlist down in
	// between: memberlist panics on Leave after Shutdown.
	m.announceMu.Lock()
	if !m.closed() {
		err = errors.Join(err, m.ml.Leave(timeout))
	}
	m.announceMu.Unlock()
	return errors.Join(err, m.Close())
}

// pushToPeers exchanges full state (memberlist's push/pull, which is what
// a join does) with every alive peer, so that each has this node's
// metadata as it is now, acknowledged. Peers already reached (the seeds)
// are asked again: one small exchange each, cheaper than tracking them.
func (m *Membership) pushToPeers() {
	self := m.LocalAddr()
	var addrs []string
	m.mu.Lock()
	for _, e := range m.members {
		if e.Alive && e.GossipAddr != self {
			addrs = append(addrs, e.GossipAddr)
		}
	}
	m.mu.Unlock()
	if len(addrs) == 0 {
		return
	}
	m.announceMu.Lock()
	defer m.announceMu.Unlock()
	if m.closed() {
		return
	}
	if n, err := m.ml.Join(addrs); err != nil {
		m.log.Warn("ring: state not handed to every peer", slog.Int("reached", n), slog.Int("peers", len(addrs)), slog.Any("err", err))
	}
}

// Close stops gossip without saying goodbye: peers notice through failure
// detection. Safe to call more than once; Ring and Members keep returning
// the last state.
func (m *Membership) Close() error {
	m.closeOnce.Do(func() {
		close(m.stop)
		m.announceMu.Lock() // no UpdateNode in flight past this point
		m.closeErr = m.ml.Shutdown()
		m.announceMu.Unlock()
		m.wg.Wait()
		m.subs.closeAll()
	})
	return m.closeErr
}

var errClosed = errors.New("ring: membership closed")

func (m *Membership) closed() bool {
	select {
	case <-m.stop:
		return true
	default:
		return false
	}
}

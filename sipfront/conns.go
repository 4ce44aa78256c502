package sipfront

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/locsvc/locsvc/internal/flowtoken"
)

// connInfo is one stream connection a front end holds: a flow of RFC
// 5626 as a flow token names it.
type connInfo struct {
	id        uint64 // serial, never 0: a new connection is a new flow
	transport string // "tcp", "tls", "ws" or "wss"
	remote    netip.AddrPort
}

// connTable is every stream connection of one server, by the address
// its packets come from: how a request learns which connection (and
// transport) it came on, whatever front end read it, and how a flow
// token is checked against the connections that are still open. A new
// connection from an address still in the table (two connections from
// one address and port, to two of the server's listeners: legal, and
// rare) takes the entry over; the older one then can no longer be named.
type connTable struct {
	mu     sync.RWMutex
	byAddr map[netip.AddrPort]connInfo
	serial atomic.Uint64
	// closed, when set (before serving), is told of every connection
	// that ended: its flows end with it.
	closed func(connInfo)
}

func newConnTable() *connTable { return &connTable{byAddr: make(map[netip.AddrPort]connInfo)} }

// add records a new connection from remote.
func (t *connTable) add(remote netip.AddrPort, transport string) connInfo {
	ci := connInfo{id: t.serial.Add(1), transport: transport, remote: unmapped(remote)}
	t.mu.Lock()
	t.byAddr[ci.remote] = ci
	t.mu.Unlock()
	return ci
}

// remove forgets a connection that ended (unless a newer one took its
// address over) and tells closed.
func (t *connTable) remove(ci connInfo) {
	t.mu.Lock()
	if cur, ok := t.byAddr[ci.remote]; ok && cur.id == ci.id {
		delete(t.byAddr, ci.remote)
	}
	t.mu.Unlock()
	if t.closed != nil {
		t.closed(ci)
	}
}

// get is the connection packets from remote come on.
func (t *connTable) get(remote netip.AddrPort) (connInfo, bool) {
	t.mu.RLock()
	ci, ok := t.byAddr[unmapped(remote)]
	t.mu.RUnlock()
	return ci, ok
}

// alive reports whether a flow can still be used: a UDP flow always (its
// NAT mapping is the phone's to keep), a connection's while that very
// connection is open.
func (t *connTable) alive(f flowtoken.Flow) bool {
	if f.Transport == "udp" {
		return true
	}
	ci, ok := t.get(f.Remote)
	return ok && ci.id == f.Conn && ci.transport == f.Transport
}

func (t *connTable) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.byAddr)
}

func unmapped(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

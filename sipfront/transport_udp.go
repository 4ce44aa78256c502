package sipfront

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/locsvc/locsvc/internal/stun"
)

// udpBufSize holds the largest UDP payload; larger datagrams cannot exist.
const udpBufSize = 65535

// udpBatch is how many datagrams one read takes, and how many early
// answers one write sends. A system call per datagram is what a request
// refused for overload costs most (a read and a send, against a few
// microseconds of scan and rendering), so under overload, when the socket
// queue is never empty, recvmmsg and sendmmsg share one call among many
// datagrams. When the queue is short a read returns what there is: a
// batch never waits to fill.
const udpBatch = 32

// udpTransport reads datagrams with a few goroutines, each with its own
// buffers. Parsing copies what it keeps, so a buffer is reused as soon as
// the datagram is parsed.
type udpTransport struct {
	fe      *stateless
	conn    *net.UDPConn
	batch   *ipv4.PacketConn // recvmmsg and sendmmsg on conn (a single read or write where the OS has none)
	nread   int              // reader goroutines
	readers sync.WaitGroup
	closing atomic.Bool
	rxTime  bool // datagrams carry their receive timestamps (overload control)
}

func newUDPTransport(fe *stateless, conn *net.UDPConn, readers int) *udpTransport {
	// ipv4.PacketConn's batch calls do not depend on the socket's family:
	// they read addresses of either family, and write to a v4 address
	// through a dual-stack socket as the kernel allows.
	return &udpTransport{fe: fe, conn: conn, batch: ipv4.NewPacketConn(conn), nread: readers}
}

func (t *udpTransport) name() string { return "udp" }

func (t *udpTransport) send(b []byte, to netip.AddrPort) error {
	_, err := t.conn.WriteToUDPAddrPort(b, to)
	return err
}

func (t *udpTransport) start() {
	if t.fe.ctl != nil {
		if err := enableRxTime(t.conn); err != nil {
			t.fe.log.Warn("sip: no receive timestamps: overload control sees no UDP queueing", "err", err)
		} else {
			t.rxTime = true
		}
	}
	for range t.nread {
		t.readers.Add(1)
		go t.read()
	}
}

func (t *udpTransport) read() {
	defer t.readers.Done()
	msgs := make([]ipv4.Message, udpBatch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, udpBufSize)}
		if t.rxTime {
			msgs[i].OOB = make([]byte, rxTimeOOB)
		}
	}
	early := newUDPSendBatch(t)
	for {
		n, err := t.batch.ReadBatch(msgs, 0)
		if err != nil {
			if t.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Nothing a reader can fix (e.g. ENOBUFS): do not spin on it.
			t.fe.log.Warn("sip: UDP read failed", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for i := range msgs[:n] {
			m := &msgs[i]
			src, ok := udpAddrPort(m.Addr)
			if !ok {
				continue
			}
			data := m.Buffers[0][:m.N]
			// A STUN Binding request is a UDP flow's keepalive (RFC 5626
			// §4.4.2); it cannot be taken for SIP, which starts with a
			// letter.
			if stun.IsBindingRequest(data) {
				_ = early.send(stun.BindingResponse(data, src), src)
				continue
			}
			var arrived time.Time
			if m.NN > 0 {
				arrived = rxTime(m.OOB[:m.NN])
			}
			t.fe.receiveDatagramVia(data, src, arrived, t, early)
		}
		early.flush()
	}
}

// udpAddrPort is a datagram's source. A v4 source on a dual-stack socket
// is unmapped, as ReadMsgUDPAddrPort's callers saw it before.
func udpAddrPort(a net.Addr) (netip.AddrPort, bool) {
	u, ok := a.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	ip, ok := netip.AddrFromSlice(u.IP)
	if !ok || u.Port <= 0 || u.Port > 65535 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(u.Port)), true
}

// stopReading makes the readers return and waits for them; the socket
// stays open so that requests in hand can still be answered.
func (t *udpTransport) stopReading() {
	t.closing.Store(true)
	t.conn.SetReadDeadline(time.Now())
	t.readers.Wait()
}

func (t *udpTransport) close() error { return t.conn.Close() }

// udpSendBatch is a sink for the answers a reader sends itself, refusals
// and STUN responses: it keeps copies until flush sends them all in one
// sendmmsg. Only the reader that owns it may use it, and only for answers
// sent before its batch ends; a handler answers through the transport.
type udpSendBatch struct {
	t     *udpTransport
	msgs  []ipv4.Message
	addrs []net.UDPAddr
	n     int
}

// udpEarlyMax is the room for one queued answer; a longer one (none of
// the reader's own answers is) goes out at once.
const udpEarlyMax = 1500

func newUDPSendBatch(t *udpTransport) *udpSendBatch {
	b := &udpSendBatch{t: t, msgs: make([]ipv4.Message, udpBatch), addrs: make([]net.UDPAddr, udpBatch)}
	for i := range b.msgs {
		b.msgs[i].Buffers = [][]byte{make([]byte, 0, udpEarlyMax)}
		b.addrs[i].IP = make(net.IP, 0, net.IPv6len)
	}
	return b
}

func (b *udpSendBatch) name() string { return "udp" }

func (b *udpSendBatch) send(p []byte, to netip.AddrPort) error {
	if len(p) > udpEarlyMax {
		return b.t.send(p, to)
	}
	if b.n == len(b.msgs) {
		b.flush()
	}
	m, a := &b.msgs[b.n], &b.addrs[b.n]
	m.Buffers[0] = append(m.Buffers[0][:0], p...)
	ip := to.Addr().Unmap()
	a.IP = a.IP[:0]
	if ip.Is4() {
		v4 := ip.As4()
		a.IP = append(a.IP, v4[:]...)
	} else {
		v6 := ip.As16()
		a.IP = append(a.IP, v6[:]...)
		a.Zone = ip.Zone()
	}
	a.Port = int(to.Port())
	m.Addr = a
	b.n++
	return nil
}

// flush sends what is queued. An answer that cannot be sent is dropped,
// as a failed single send is (the client retransmits), and the ones
// after it still go: sendmmsg stops at the first that fails.
func (b *udpSendBatch) flush() {
	sent := 0
	for sent < b.n {
		n, err := b.t.batch.WriteBatch(b.msgs[sent:b.n], 0)
		if err != nil || n == 0 {
			b.t.fe.log.Debug("sip: sending an early answer failed", "to", b.msgs[sent].Addr, "err", err)
			n = 1
		}
		sent += n
	}
	for i := range b.msgs[:b.n] {
		b.msgs[i].Addr = nil
		b.addrs[i].Zone = ""
	}
	b.n = 0
}

package sipfront

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/locsvc/locsvc/internal/stun"
)

// udpBufSize holds the largest UDP payload; larger datagrams cannot exist.
const udpBufSize = 65535

// udpTransport reads datagrams with a few goroutines, each with its own
// buffer. Parsing copies what it keeps, so a buffer is reused as soon as
// the datagram is parsed.
type udpTransport struct {
	fe      *stateless
	conn    *net.UDPConn
	nread   int // reader goroutines
	readers sync.WaitGroup
	closing atomic.Bool
	rxTime  bool // datagrams carry their receive timestamps (overload control)
}

func newUDPTransport(fe *stateless, conn *net.UDPConn, readers int) *udpTransport {
	return &udpTransport{fe: fe, conn: conn, nread: readers}
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
	buf := make([]byte, udpBufSize)
	var oob []byte
	if t.rxTime {
		oob = make([]byte, rxTimeOOB)
	}
	for {
		n, oobn, _, src, err := t.conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if t.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Nothing a reader can fix (e.g. ENOBUFS): do not spin on it.
			t.fe.log.Warn("sip: UDP read failed", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		// A STUN Binding request is a UDP flow's keepalive (RFC 5626
		// §4.4.2); it cannot be taken for SIP, which starts with a letter.
		if stun.IsBindingRequest(buf[:n]) {
			_ = t.send(stun.BindingResponse(buf[:n], src), src)
			continue
		}
		var arrived time.Time
		if oobn > 0 {
			arrived = rxTime(oob[:oobn])
		}
		t.fe.receiveDatagram(buf[:n], src, arrived, t)
	}
}

// stopReading makes the readers return and waits for them; the socket
// stays open so that requests in hand can still be answered.
func (t *udpTransport) stopReading() {
	t.closing.Store(true)
	t.conn.SetReadDeadline(time.Now())
	t.readers.Wait()
}

func (t *udpTransport) close() error { return t.conn.Close() }

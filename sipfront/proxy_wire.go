package sipfront

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/locsvc/locsvc/internal/siphead"
	"github.com/locsvc/locsvc/internal/sipuri"
	"github.com/locsvc/locsvc/internal/stun"
)

// Proxy mode's sockets. sipgo's transports parse and write SIP, but the
// proxy owns what they read from: the UDP socket (STUN keep-alives are
// answered before sipgo sees a datagram), the TCP and TLS listeners (each
// connection is a flow in the connection table, bounded, and closed when
// idle) and SIP over WebSocket, served by locsvc's own WebSocket
// transport (transport_ws.go) and handed to sipgo's TCP transport as one
// more stream per connection. So every transport answers keep-alives and
// every connection is a flow a token can name, in proxy mode as in the
// others.

// udpReader is the UDP socket as sipgo reads it. A STUN Binding request
// (RFC 5626 §4.4.2) is answered here and never reaches the SIP parser.
// Under overload control a new REGISTER or INVITE already too late as it
// is read is refused here too, from a scan, before sipgo parses it or
// keeps a transaction for it (shedEarly); the others' arrival times are
// noted for their handlers (arrivals).
type udpReader struct {
	*net.UDPConn
	p *proxy
}

func (r *udpReader) ReadFrom(b []byte) (int, net.Addr, error) {
	var oob []byte
	if r.p.arrivals != nil {
		// From a pool, not a buffer of the reader's: sipgo reads a
		// listener from one goroutine today, but nothing promises it.
		buf := oobBufs.Get().(*[]byte)
		defer oobBufs.Put(buf)
		oob = *buf
	}
	for {
		n, oobn, _, src, err := r.ReadMsgUDPAddrPort(b, oob)
		if err != nil {
			return n, nil, err
		}
		if stun.IsBindingRequest(b[:n]) {
			_ = r.send(stun.BindingResponse(b[:n], src), src)
			continue
		}
		if oobn > 0 && r.p.shedEarly(b[:n], src, rxTime(oob[:oobn]), r) {
			continue
		}
		return n, net.UDPAddrFromAddrPort(src), nil
	}
}

var oobBufs = sync.Pool{New: func() any { b := make([]byte, rxTimeOOB); return &b }}

// send and name make the reader the sink of its own refusals.
func (r *udpReader) send(b []byte, to netip.AddrPort) error {
	_, err := r.WriteToUDPAddrPort(b, to)
	return err
}

func (r *udpReader) name() string { return "udp" }

// shedEarly refuses datagram data, which reached the host at arrived,
// when it is a new REGISTER or INVITE already too late and no
// retransmission of one handed to sipgo; it notes the arrival of one it
// hands on. It reports whether it answered.
func (p *proxy) shedEarly(data []byte, src netip.AddrPort, arrived time.Time, out sink) bool {
	h := heads.Get().(*siphead.Head)
	defer heads.Put(h)
	method, ok := newRequest(h, data)
	if !ok {
		return false
	}
	if p.arrivals.seen(h.Branch) {
		return false // a retransmission: sipgo's transaction answers it
	}
	now := time.Now()
	if p.ctl.Late(now, now.Sub(arrived)) && refuseScanned(p.ctl, &p.core.Stats, shedLate, h, method, src, arrived, "", out, p.log) {
		return true
	}
	p.arrivals.note(string(h.Branch), arrived)
	return false
}

// arrivals keeps when each new REGISTER or INVITE handed to sipgo reached
// the host, by its top Via branch: sipgo hands a request to its handler
// without that time, and the handler reads it here; and a retransmission
// of one handed on is told from a new request, so that it goes to sipgo's
// transaction rather than to a refusal. Two generations of a map, the
// older dropped as the newer starts, keep each for at least a
// generation, as long as a UDP client retransmits (Timer F, 32 s),
// without a sweeper.
type arrivals struct {
	mu        sync.Mutex
	cur, prev map[string]time.Time
	started   time.Time // of cur
}

// arrivalsKept is how long a generation lasts, and arrivalsMax how many
// requests one holds at most (past it, a request's handler judges it on
// no wait, and its retransmissions may meet a refusal).
const (
	arrivalsKept = 32 * time.Second
	arrivalsMax  = 1 << 18
)

func newArrivals() *arrivals {
	return &arrivals{cur: make(map[string]time.Time), prev: map[string]time.Time{}, started: time.Now()}
}

func (a *arrivals) note(branch string, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if now := time.Now(); now.Sub(a.started) > arrivalsKept {
		a.prev, a.cur, a.started = a.cur, make(map[string]time.Time, len(a.cur)), now
	}
	if len(a.cur) < arrivalsMax {
		a.cur[branch] = at
	}
}

// at returns when the request of branch reached the host.
func (a *arrivals) at(branch string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t, ok := a.cur[branch]; ok {
		return t, true
	}
	t, ok := a.prev[branch]
	return t, ok
}

func (a *arrivals) seen(branch []byte) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.cur[string(branch)]
	if !ok {
		_, ok = a.prev[string(branch)]
	}
	return ok
}

// trackedListener hands sipgo the connections of a TCP or TLS listener,
// each recorded in the connection table while it lasts, at most
// MaxTCPConns at once (this listener's own: the table holds every
// transport's).
type trackedListener struct {
	net.Listener
	p         *proxy
	transport string
	open      atomic.Int64
}

func (l *trackedListener) Accept() (net.Conn, error) {
	stats := &l.p.core.Stats
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		remote, err := netip.ParseAddrPort(c.RemoteAddr().String())
		if err != nil || l.open.Load() >= int64(l.p.cfg.MaxTCPConns) {
			stats.Dropped.Add(1)
			c.Close()
			continue
		}
		l.open.Add(1)
		stats.TCPConns.Add(1)
		return &trackedConn{Conn: c, l: l, ci: l.p.conns.add(remote, l.transport)}, nil
	}
}

// trackedConn is one accepted connection. A read waits at most
// TCPIdleTimeout (keep-alives count), as in the other modes; the
// connection leaves the table, once, when it fails or is closed.
type trackedConn struct {
	net.Conn
	l    *trackedListener
	ci   connInfo
	once sync.Once
}

func (c *trackedConn) Read(b []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.l.p.cfg.TCPIdleTimeout))
	n, err := c.Conn.Read(b)
	if err != nil {
		c.end()
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.end()
	return c.Conn.Close()
}

func (c *trackedConn) end() {
	c.once.Do(func() {
		c.l.open.Add(-1)
		c.l.p.core.Stats.TCPConns.Add(-1)
		c.l.p.conns.remove(c.ci)
	})
}

// connQueue is a listener whose connections are made in-process: each
// upgraded WebSocket connection, as a wsStream, for sipgo's TCP
// transport to accept.
type connQueue struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

// push hands c to the accept loop; false once the queue is closed.
func (q *connQueue) push(c net.Conn) bool {
	select {
	case q.conns <- c:
		return true
	case <-q.closed:
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.closed:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.closed) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }

// wsStream is a WebSocket connection as sipgo's TCP transport sees it: a
// byte stream of SIP messages to read, each message written one
// WebSocket text message. The connection's reader feeds it through a
// pipe, so a message is taken only as fast as sipgo parses.
type wsStream struct {
	c             *wsConn
	src           netip.AddrPort
	pr            *io.PipeReader
	pw            *io.PipeWriter
	local, remote net.Addr
	once          sync.Once
}

func newWSStream(c *wsConn, src netip.AddrPort, local net.Addr) *wsStream {
	pr, pw := io.Pipe()
	return &wsStream{c: c, src: src, pr: pr, pw: pw, local: local, remote: net.TCPAddrFromAddrPort(src)}
}

func (s *wsStream) Read(b []byte) (int, error) { return s.pr.Read(b) }

func (s *wsStream) Write(b []byte) (int, error) {
	if err := s.c.send(b, s.src); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close is sipgo giving the connection up (its reader ended, or it could
// not parse the stream): the WebSocket goes too.
func (s *wsStream) Close() error {
	s.once.Do(func() {
		s.pr.Close()
		s.c.ws.CloseNow()
	})
	return nil
}

func (s *wsStream) LocalAddr() net.Addr              { return s.local }
func (s *wsStream) RemoteAddr() net.Addr             { return s.remote }
func (s *wsStream) SetDeadline(time.Time) error      { return nil }
func (s *wsStream) SetReadDeadline(time.Time) error  { return nil }
func (s *wsStream) SetWriteDeadline(time.Time) error { return nil }

// feed passes one message on; it returns once sipgo has read it, or the
// stream is closed.
func (s *wsStream) feed(m []byte) { _, _ = s.pw.Write(m) }

// end is the WebSocket connection ending: sipgo reads EOF.
func (s *wsStream) end() { s.pw.CloseWithError(io.EOF) }

// errNoFraming is a WebSocket message that cannot be put on a stream.
var errNoFraming = errors.New("message without a header end, or with a Content-Length its body does not have")

// streamFramed is one WebSocket message (one SIP message, RFC 7118 §5)
// made fit for a stream parser, which needs Content-Length (optional over
// WebSocket, whose frames carry the length): added when absent. A
// message whose Content-Length is wrong, or that has no header end, is
// refused: on a stream it would make the parser lose its place.
func streamFramed(m []byte) ([]byte, error) {
	end := bytes.Index(m, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, errNoFraming
	}
	head, body := m[:end+2], m[end+4:]
	for line := range bytes.SplitSeq(head, []byte("\r\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		name = bytes.TrimSpace(name)
		if !bytes.EqualFold(name, []byte("Content-Length")) && !bytes.EqualFold(name, []byte("l")) {
			continue
		}
		v := sipuri.TrimLWS(string(value))
		if n, err := strconv.Atoi(v); err != nil || n != len(body) {
			return nil, errNoFraming
		}
		return m, nil
	}
	out := make([]byte, 0, len(m)+24)
	out = append(out, head...)
	out = append(out, "Content-Length: "...)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, "\r\n\r\n"...)
	return append(out, body...), nil
}

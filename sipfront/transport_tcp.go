package sipfront

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// tcpReadBuffer is what one read of a connection takes at most: a
// REGISTER or an INVITE fits, a larger message takes a few reads.
const tcpReadBuffer = 4 << 10

// tcpWriteTimeout bounds one response write, so a client that stops
// reading cannot hold a handler.
const tcpWriteTimeout = 5 * time.Second

// tcpTransport accepts connections and runs one reader with its own
// stream parser per connection. With tlsConf set it serves SIP over TLS
// (transport_tls.go): the same framing, on a tls.Conn.
type tcpTransport struct {
	fe      *stateless
	ln      *net.TCPListener
	proto   string      // "tcp" or "tls": the transport bindings record
	tlsConf *tls.Config // nil for TCP
	mu      sync.Mutex
	conns   map[*tcpConn]struct{}
	closing atomic.Bool
	wg      sync.WaitGroup // accept loop and connection readers
}

func newTCPTransport(fe *stateless, ln *net.TCPListener) *tcpTransport {
	return &tcpTransport{fe: fe, ln: ln, proto: "tcp", conns: make(map[*tcpConn]struct{})}
}

func (t *tcpTransport) start() {
	t.wg.Add(1)
	go t.accept()
}

func (t *tcpTransport) accept() {
	defer t.wg.Done()
	for {
		c, err := t.ln.AcceptTCP()
		if err != nil {
			if t.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			t.fe.log.Warn("sip: TCP accept failed", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		t.mu.Lock()
		full := len(t.conns) >= t.fe.cfg.MaxTCPConns
		var tc *tcpConn
		if !full && !t.closing.Load() {
			var conn net.Conn = c
			if t.tlsConf != nil {
				conn = tls.Server(c, t.tlsConf)
			}
			tc = &tcpConn{t: t, conn: conn}
			t.conns[tc] = struct{}{}
			t.wg.Add(1)
		}
		t.mu.Unlock()
		if tc == nil {
			t.fe.core.Stats.Dropped.Add(1)
			c.Close()
			continue
		}
		t.fe.core.Stats.TCPConns.Add(1)
		go tc.serve()
	}
}

// stopReading closes the listener and makes every connection reader
// return; a reader closes its connection once the requests it handed on
// have been answered.
func (t *tcpTransport) stopReading() {
	t.closing.Store(true)
	t.ln.Close()
	t.mu.Lock()
	for c := range t.conns {
		c.conn.SetReadDeadline(time.Now())
	}
	t.mu.Unlock()
	t.wg.Wait()
}

func (t *tcpTransport) close() error { return nil }

// tcpConn is one client connection. Handlers answer on it concurrently;
// writes are serialised.
type tcpConn struct {
	t       *tcpTransport
	conn    net.Conn
	wmu     sync.Mutex
	pending sync.WaitGroup // requests handed to handlers, not yet answered
}

func (c *tcpConn) name() string { return c.t.proto }

func (c *tcpConn) send(b []byte, _ netip.AddrPort) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(tcpWriteTimeout))
	_, err := c.conn.Write(b)
	return err
}

func (c *tcpConn) serve() {
	fe := c.t.fe
	defer func() {
		c.pending.Wait()
		c.conn.Close()
		c.t.mu.Lock()
		delete(c.t.conns, c)
		c.t.mu.Unlock()
		fe.core.Stats.TCPConns.Add(-1)
		c.t.wg.Done()
	}()
	defer fe.core.Recover("reading a "+c.t.proto+" connection", nil, nil)
	if !c.handshake() {
		return
	}
	src, _ := netip.ParseAddrPort(c.conn.RemoteAddr().String())
	ci := fe.conns.add(src, c.t.proto)
	defer fe.conns.remove(ci)
	ps := fe.parser.NewSIPStream()
	defer ps.Close()
	// Small: one per connection, and tens of thousands of connections
	// are mostly idle. The stream parser gathers what a message needs.
	buf := make([]byte, tcpReadBuffer)
	for {
		// Deadline first, then the check: stopReading sets closing, then
		// a deadline of now, so one of the two stops this reader.
		c.conn.SetReadDeadline(time.Now().Add(fe.cfg.TCPIdleTimeout))
		if c.t.closing.Load() {
			return
		}
		n, err := c.conn.Read(buf)
		if n > 0 && !c.feed(ps, buf[:n], src) {
			c.lingerClose()
			return
		}
		if err != nil {
			return
		}
	}
}

// feed parses what arrived and hands on each complete message. It
// reports false when the stream cannot go on: its framing is lost.
func (c *tcpConn) feed(ps *sip.ParserStream, data []byte, src netip.AddrPort) bool {
	fe := c.t.fe
	if ps.Buffer().Len() == 0 {
		if keepAlive, pong := streamKeepAlive(data); keepAlive {
			if pong {
				c.send(crlf, src)
			}
			return true
		}
	}
	ps.Write(data)
	for ps.Buffer().Len() > 0 {
		msg, _, err := ps.ParseNext()
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return true // wait for the rest
		}
		if err != nil {
			// Answer if the broken message can be answered, then hang
			// up: where the next message starts is unknown.
			if errors.Is(err, sip.ErrMessageTooLarge) {
				fe.core.Stats.Limit(LimitMessageSize)
			}
			fe.receive(msg, err, src, c, nil)
			return false
		}
		c.pending.Add(1)
		fe.receive(msg, nil, src, c, c.pending.Done)
	}
	return true
}

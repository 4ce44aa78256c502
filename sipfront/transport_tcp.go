package sipfront

import (
	"bytes"
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
	// partial is the start of a message that spans reads (at most
	// partialKeep bytes), partialN how much of it has been read: what a
	// 513 is built from when the message turns out too large before its
	// header is whole. nil between messages.
	partial  []byte
	partialN int
}

// partialKeep is how much of a message's start is kept for its 513: the
// start line and the headers an answer copies come first.
const partialKeep = 4 << 10

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
	off := 0 // where in data the message being parsed began
	for ps.Buffer().Len() > 0 {
		msg, n, err := ps.ParseNext()
		rest := data[min(off, len(data)):]
		if errors.Is(err, io.ErrUnexpectedEOF) {
			c.keepPartial(rest)
			return true // wait for the rest
		}
		if err != nil {
			// Answer if the broken message can be answered, then hang
			// up: where the next message starts is unknown.
			if errors.Is(err, sip.ErrMessageTooLarge) {
				fe.core.Stats.Limit(LimitMessageSize)
				if msg == nil {
					// Too large before its header was whole: the parser
					// keeps nothing of it, the start kept here is enough
					// to answer.
					msg = c.partialHead(rest)
				}
			}
			fe.receive(msg, err, src, c, nil)
			return false
		}
		off += max(n-c.partialN, 0)
		c.partial, c.partialN = nil, 0
		c.pending.Add(1)
		fe.receive(msg, nil, src, c, c.pending.Done)
	}
	c.partial, c.partialN = nil, 0
	return true
}

// keepPartial notes b, the part of an incomplete message that arrived in
// the last read.
func (c *tcpConn) keepPartial(b []byte) {
	c.partialN += len(b)
	if room := partialKeep - len(c.partial); room > 0 {
		c.partial = append(c.partial, b[:min(room, len(b))]...)
	}
}

// partialHead is as much of the message begun in c.partial (and
// continued in b) as parses: its start line and whole header lines.
func (c *tcpConn) partialHead(b []byte) sip.Message {
	c.keepPartial(b)
	head := c.partial
	if i := bytes.Index(head, []byte("\r\n\r\n")); i >= 0 {
		head = head[:i+4]
	}
	msg, _, _ := c.t.fe.head.Parse(head, false)
	return msg
}

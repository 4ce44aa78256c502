package sipfront

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/locsvc/locsvc/sipfront/internal/core"
)

// SIP over WebSocket (RFC 7118) in registrar and redirect modes. The
// library (coder/websocket) does the framing: it answers Pings, joins
// fragments, takes text and binary messages alike and closes with 1009
// past the read limit. What is left here is what RFC 7118 adds: the "sip"
// subprotocol, one SIP message per WebSocket message, answers on the
// connection.

const (
	// wsHandshakeTimeout bounds the upgrade request (and for wss the TLS
	// handshake before it), so that half-open handshakes cannot pile up.
	wsHandshakeTimeout = 10 * time.Second
	// wsPingInterval and wsPingTimeout: a connection whose peer does not
	// answer a Ping in time is closed. Browsers answer Pings themselves,
	// so this finds dead peers well before TCPIdleTimeout would.
	wsPingInterval = 30 * time.Second
	wsPingTimeout  = 10 * time.Second
	// wsMaxHeader bounds the upgrade request's header; browsers send
	// cookies with it.
	wsMaxHeader = 16 << 10
)

// wsSubprotocol is the one RFC 7118 §4.1 registers.
const wsSubprotocol = "sip"

// wsTransport serves the upgrade on an http.Server and then reads each
// connection on its handler's goroutine (the server forgets hijacked
// connections, so wg tracks them). Both front ends use it: what becomes
// of a connection's messages is open's.
type wsTransport struct {
	cfg       *Config
	core      *core.Core
	log       *slog.Logger
	open      wsOpener
	ln        net.Listener
	proto     string // "ws" or "wss": the transport bindings record
	srv       *http.Server
	pingEvery time.Duration
	pingWait  time.Duration

	mu      sync.Mutex
	conns   map[*wsConn]struct{}
	closing bool
	// wg counts the HTTP server's Serve and the connection readers; each
	// Add happens under mu before closing is set, or while another count
	// is held, so none races stopReading's Wait.
	wg sync.WaitGroup
}

// wsOpener is called once a connection is upgraded. It returns deliver,
// which takes each SIP message (or keep-alive) read off the connection
// and calls release once it is dealt with, and done, called once the
// connection has ended (nil: nothing to do).
type wsOpener func(c *wsConn, src netip.AddrPort) (deliver func(data []byte, release func()), done func())

// newWSTransport serves ws on ln, or wss with tlsConf set.
func newWSTransport(cfg *Config, c *core.Core, ln *net.TCPListener, tlsConf *tls.Config, open wsOpener) *wsTransport {
	t := &wsTransport{cfg: cfg, core: c, log: cfg.Logger, open: open, ln: ln, proto: "ws",
		pingEvery: wsPingInterval, pingWait: wsPingTimeout, conns: make(map[*wsConn]struct{})}
	if cfg.wsPing > 0 {
		t.pingEvery, t.pingWait = cfg.wsPing, cfg.wsPingTimeout
	}
	if tlsConf != nil {
		conf := tlsConf.Clone()
		// The upgrade is HTTP/1.1 only; offering h2 would invite clients
		// that cannot upgrade on it.
		conf.NextProtos = []string{"http/1.1"}
		t.ln, t.proto = tls.NewListener(ln, conf), "wss"
	}
	t.srv = &http.Server{
		Handler:           t,
		ReadHeaderTimeout: wsHandshakeTimeout,
		IdleTimeout:       wsHandshakeTimeout,
		MaxHeaderBytes:    wsMaxHeader,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	return t
}

func (t *wsTransport) start() {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		if err := t.srv.Serve(t.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.log.Warn("sip: WebSocket listener stopped", "transport", t.proto, "err", err)
		}
	}()
}

// stopReading stops upgrades and, on every connection, waits for the
// answers in hand before closing it with 1001 (going away), then waits
// for the readers.
func (t *wsTransport) stopReading() {
	t.mu.Lock()
	t.closing = true
	var open []*wsConn
	for c := range t.conns {
		if c.ws != nil {
			open = append(open, c)
		}
	}
	t.mu.Unlock()
	// Closes the listener and the connections still in their handshake;
	// upgraded ones are hijacked and left to us.
	t.srv.Close()
	t.wg.Add(len(open))
	for _, c := range open {
		go func() {
			defer t.wg.Done()
			c.shutdown()
		}()
	}
	t.wg.Wait()
}

func (t *wsTransport) close() error { return nil }

// ServeHTTP takes an upgrade request and, once upgraded, reads the
// connection until it ends.
func (t *wsTransport) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	stats := &t.core.Stats
	refuse := func(code int, why string) {
		stats.WSRefused.Add(1)
		http.Error(w, why, code)
	}
	if code, why := t.refusal(r); code != 0 {
		refuse(code, why)
		return
	}
	// The slot is taken before the upgrade so that MaxTCPConns holds for
	// connections being upgraded too.
	t.mu.Lock()
	if t.closing || len(t.conns) >= t.cfg.MaxTCPConns {
		t.mu.Unlock()
		refuse(http.StatusServiceUnavailable, "no WebSocket connection free")
		return
	}
	c := &wsConn{t: t}
	t.conns[c] = struct{}{}
	t.wg.Add(1)
	t.mu.Unlock()
	release := func() {
		t.mu.Lock()
		delete(t.conns, c)
		t.mu.Unlock()
		t.wg.Done()
	}
	served := false
	defer func() {
		if !served {
			release()
		}
	}()

	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols: []string{wsSubprotocol},
		// refusal checked the Origin by Config.WSOrigins; the library's
		// own check (Origin must match Host) would refuse every browser
		// page served from another host than the registrar.
		InsecureSkipVerify: true,
		// A compressed message's size is not what arrived: keep the read
		// limit a bound on what a client makes the server hold.
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		// Accept has answered (e.g. 426 to a request that is no upgrade).
		stats.WSRefused.Add(1)
		t.log.Debug("sip: WebSocket upgrade refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	t.mu.Lock()
	c.ws = ws
	closing := t.closing
	t.mu.Unlock()
	if closing {
		ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	src, _ := netip.ParseAddrPort(r.RemoteAddr)
	// The connection is read on a goroutine of its own, and the handler
	// returns: what net/http kept for the request and its goroutine's
	// stack go (a few KB a connection, which tens of thousands hold).
	served = true
	go func() {
		defer release()
		c.serve(src)
	}()
}

// refusal is why an upgrade request is refused before the upgrade: an
// Origin not allowed (403), or no "sip" subprotocol offered (400; RFC
// 7118 §4.1 has the client offer it, and a server that does not choose
// it would be talking SIP to a client that did not ask for it).
func (t *wsTransport) refusal(r *http.Request) (int, string) {
	if origins := t.cfg.WSOrigins; len(origins) > 0 {
		o := r.Header.Get("Origin")
		if o == "" || !slices.ContainsFunc(origins, func(a string) bool { return strings.EqualFold(strings.TrimSpace(a), o) }) {
			return http.StatusForbidden, "Origin not allowed"
		}
	}
	if !offersSIP(r.Header) {
		return http.StatusBadRequest, `WebSocket subprotocol "sip" required (RFC 7118)`
	}
	return 0, ""
}

// offersSIP reports whether Sec-WebSocket-Protocol lists "sip", compared
// as the library compares when it selects it.
func offersSIP(h http.Header) bool {
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), wsSubprotocol) {
				return true
			}
		}
	}
	return false
}

// wsConn is one upgraded connection: a sink whose answers go out as one
// text message each.
type wsConn struct {
	t  *wsTransport
	ws *websocket.Conn // set under t.mu once upgraded

	mu      sync.Mutex
	stopped bool           // no message is taken once set
	pinger  *time.Timer    // the next Ping (ping)
	pending sync.WaitGroup // messages taken, not yet dealt with
}

func (c *wsConn) name() string { return c.t.proto }

func (c *wsConn) send(b []byte, _ netip.AddrPort) error {
	ctx, cancel := context.WithTimeout(context.Background(), tcpWriteTimeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// serve reads messages until the connection ends, then waits for their
// answers before closing it.
func (c *wsConn) serve(src netip.AddrPort) {
	t := c.t
	stats := &t.core.Stats
	stats.WSConns.Add(1)
	deliver, ended := t.open(c, src)
	defer func() {
		c.stop()
		c.pending.Wait()
		c.ws.CloseNow()
		if ended != nil {
			ended()
		}
		stats.WSConns.Add(-1)
	}()
	defer t.core.Recover("reading a "+t.proto+" connection", nil, nil)
	c.ws.SetReadLimit(int64(t.cfg.MaxMessageSize))
	// Pings come from a timer, not a goroutine of the connection's own:
	// tens of thousands of connections each keep one goroutine fewer.
	c.mu.Lock()
	c.pinger = time.AfterFunc(t.pingEvery, c.ping)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.pinger.Stop()
		c.mu.Unlock()
	}()
	// A connection that sends nothing (keep-alives count, Pongs do not)
	// for the idle timeout is closed, as over TCP. One timer, pushed back
	// by each message, costs less than a deadline context per read.
	idle := time.AfterFunc(t.cfg.TCPIdleTimeout, func() { c.ws.CloseNow() })
	defer idle.Stop()
	for {
		_, data, err := c.ws.Read(context.Background())
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				// The library has closed with 1009: no answer can go.
				stats.Limit(LimitMessageSize)
			}
			return
		}
		idle.Reset(t.cfg.TCPIdleTimeout)
		if !c.take() {
			return
		}
		deliver(data, c.pending.Done)
	}
}

// take counts a message as pending unless the connection is stopping.
func (c *wsConn) take() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return false
	}
	c.pending.Add(1)
	return true
}

func (c *wsConn) stop() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
}

// shutdown is Close's part: no more messages, the answers in hand go
// out, then the close handshake (which the reader completes).
func (c *wsConn) shutdown() {
	c.stop()
	c.pending.Wait()
	c.ws.Close(websocket.StatusGoingAway, "server shutting down")
}

// ping is the ping timer's: a peer that answers no Ping in time is gone
// (its connection is closed, which ends the reader); one that answers is
// pinged again an interval later. A connection that ended meanwhile is
// not: its reader stops the timer.
func (c *wsConn) ping() {
	ctx, cancel := context.WithTimeout(context.Background(), c.t.pingWait)
	err := c.ws.Ping(ctx)
	cancel()
	if err != nil {
		c.t.log.Debug("sip: WebSocket peer gone", "transport", c.t.proto, "err", err)
		c.ws.CloseNow()
		return
	}
	c.mu.Lock()
	if !c.stopped {
		c.pinger.Reset(c.t.pingEvery)
	}
	c.mu.Unlock()
}

// openWS is the stateless front end's wsOpener: each message is parsed
// and answered as a datagram is, the answers going back on c.
func (fe *stateless) openWS(c *wsConn, src netip.AddrPort) (func([]byte, func()), func()) {
	ci := fe.conns.add(src, c.t.proto)
	return func(data []byte, release func()) { fe.receiveWSMessage(data, src, c, release) },
		func() { fe.conns.remove(ci) }
}

// receiveWSMessage takes one WebSocket message: exactly one SIP message
// (RFC 7118 §5), so it is parsed whole as a datagram is, and framing
// cannot be lost: a broken message gets its 400 and the connection goes
// on. release is called once the message is dealt with.
func (fe *stateless) receiveWSMessage(data []byte, src netip.AddrPort, out sink, release func()) {
	handedOff := false
	defer func() {
		if !handedOff {
			release()
		}
	}()
	defer fe.core.Recover("parsing a WebSocket message", nil, nil)
	if keepAlive, pong := streamKeepAlive(data); keepAlive {
		if pong {
			out.send(crlf, src)
		}
		return
	}
	msg, err := fe.parser.ParseSIP(data)
	handedOff = true
	fe.receive(msg, err, src, out, release)
}

package sipfront

import (
	"crypto/tls"
	"net"
	"time"
)

// tlsHandshakeTimeout bounds a TLS handshake, so that connections that
// never complete one cannot hold MaxTCPConns slots for the idle timeout.
const tlsHandshakeTimeout = 10 * time.Second

// newTLSTransport serves SIP over TLS (RFC 3261 §26.2) on ln: the TCP
// transport's framing and connection handling, each connection wrapped in
// tls.Server. Answers go back on the connection the request came on, as
// for TCP; a UA's later requests need the connection it keeps open.
func newTLSTransport(fe *stateless, ln *net.TCPListener, conf *tls.Config) *tcpTransport {
	t := newTCPTransport(fe, ln)
	t.proto, t.tlsConf = "tls", conf
	return t
}

// handshake completes the TLS handshake of a TLS connection before its
// reader starts (a no-op for TCP), so that a failed one is logged as such
// rather than as a broken stream. It reports false when the connection
// must be dropped.
func (c *tcpConn) handshake() bool {
	tc, ok := c.conn.(*tls.Conn)
	if !ok {
		return true
	}
	// Deadline first, then the check, as in serve: stopReading sets
	// closing, then a deadline of now.
	c.conn.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	if c.t.closing.Load() {
		return false
	}
	if err := tc.Handshake(); err != nil {
		c.t.fe.log.Debug("sip: TLS handshake failed", "remote", c.conn.RemoteAddr().String(), "err", err)
		return false
	}
	c.conn.SetDeadline(time.Time{})
	return true
}

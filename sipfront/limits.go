package sipfront

import (
	"bytes"
	"io"
	"math"
	"net/netip"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/locsvc/locsvc/locsvc"
)

// limits are the front end's own refusals, made before a request costs a
// handler or a storage round trip: message size and REGISTER rate. The
// location limits (contacts, URI length) are the Locator's; the front end
// only counts their hits (countLocatorLimit). docs/limits.md lists them
// all.
type limits struct {
	// register is nil when REGISTERs are not rate limited.
	register *rateLimiter
	// head parses just enough of an oversized datagram to answer it. Its
	// bound is sipgo's default, which no datagram exceeds.
	head *sip.Parser
}

func (s *Server) initLimits() {
	s.parser.MaxMessageLength = s.cfg.MaxMessageSize
	s.limits.head = newParser()
	if s.cfg.RegisterRate > 0 {
		s.limits.register = newRateLimiter(s.cfg.RegisterRate, s.cfg.RegisterBurst, rateLimitKeys, s.clock)
	}
}

// sizedParser is a parser bounded by MaxMessageSize, for transports that
// parse on their own (proxy mode's sipgo).
func (s *Server) sizedParser() *sip.Parser {
	p := newParser()
	p.MaxMessageLength = s.cfg.MaxMessageSize
	return p
}

// registerLimited returns the 503 for a REGISTER from src over the rate
// limit, or nil when it may go on. Trusted sources are exempt: a proxy in
// front sends every one of its users' REGISTERs from one address.
func (s *Server) registerLimited(req *sip.Request, src netip.Addr) *sip.Response {
	l := s.limits.register
	if l == nil || s.trusted(src) {
		return nil
	}
	ok, wait := l.allow(src)
	if ok {
		return nil
	}
	s.stats.limit(LimitRegisterRate)
	res := newResponse(req, 503, "REGISTER Rate Limit Exceeded")
	res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(retryAfterSeconds(wait))))
	return res
}

// retryAfterSeconds rounds a wait up to whole seconds (Retry-After has no
// finer unit), at least 1: 0 would invite an immediate retry.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// oversizedDatagram answers a datagram over MaxMessageSize with 513
// (RFC 3261 §21.5.14), parsing only its header, which is all an answer
// needs; if even that cannot be parsed it is dropped.
func (s *Server) oversizedDatagram(data []byte, src netip.AddrPort, out sink) {
	s.stats.limit(LimitMessageSize)
	head := data
	if i := bytes.Index(data, []byte("\r\n\r\n")); i >= 0 {
		head = data[:i+4]
	}
	msg, _, _ := s.limits.head.Parse(head, false)
	s.receive(msg, sip.ErrMessageTooLarge, src, out, nil)
}

// lingerTimeout and lingerBytes bound how long and how much a connection
// about to be closed after an answer is drained.
const (
	lingerTimeout = time.Second
	lingerBytes   = 256 << 10
)

// lingerClose lets the last answers on a connection reach the client
// before the server hangs up: answers in hand go out, the write side is
// shut, and what the client is still sending (the rest of an oversized
// message) is read and discarded. Closing with unread input would send a
// reset, and a reset can destroy the answer in the client's receive
// buffer before the client reads it.
func (c *tcpConn) lingerClose() {
	c.pending.Wait()
	if cw, ok := c.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.CopyN(io.Discard, c.conn, lingerBytes)
}

// countLocatorLimit counts a refusal by the Locator that is one of the
// location limits (locsvc names it in Error.Limit, also across gRPC).
func (s *Server) countLocatorLimit(e *locsvc.Error) {
	if e.Limit != "" {
		s.stats.limit(e.Limit)
	}
}

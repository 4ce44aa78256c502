package sipfront

import (
	"bytes"
	"io"
	"net/netip"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/sipfront/internal/core"
)

// The front ends' own limit is the one only they can see: message size
// (the core has the REGISTER rate, the Locator the location limits;
// docs/limits.md lists them all).

// sizedParser is a parser bounded by MaxMessageSize.
func sizedParser(cfg *Config) *sip.Parser {
	p := core.NewParser()
	p.MaxMessageLength = cfg.MaxMessageSize
	return p
}

// oversizedDatagram answers a datagram over MaxMessageSize with 513
// (RFC 3261 §21.5.14), parsing only its header, which is all an answer
// needs; if even that cannot be parsed it is dropped.
func (fe *stateless) oversizedDatagram(data []byte, src netip.AddrPort, out sink) {
	fe.core.Stats.Limit(LimitMessageSize)
	head := data
	if i := bytes.Index(data, []byte("\r\n\r\n")); i >= 0 {
		head = data[:i+4]
	}
	msg, _, _ := fe.head.Parse(head, false)
	fe.receive(msg, sip.ErrMessageTooLarge, src, out, nil)
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

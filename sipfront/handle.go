package sipfront

import (
	"context"
	"errors"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/emiago/sipgo/sip"
)

// sink is where answers to one client go: a UDP socket or a TCP connection.
type sink interface {
	send(b []byte, to netip.AddrPort) error
	name() string // "udp" or "tcp", as stored in bindings
}

// inbound is one request and where it came from.
type inbound struct {
	req  *sip.Request
	via  *sip.ViaHeader // top Via, after fixVia
	src  netip.AddrPort
	dest netip.AddrPort // where UDP answers go
	out  sink
	key  string // transaction key, for requests answered from txcache
	// answered is set once a final answer went out.
	answered bool
	// arrived is when the request was parsed, for Stats.AnswerTimes.
	arrived time.Time
}

// receive takes one parsed message off the wire (perr: sipgo's parse
// error, msg possibly partial) and answers it or hands it to a handler.
// release, if not nil, is called once the message is dealt with (answered
// or dropped), which may be after receive returns. receive must never
// panic: receiveSafe is the last resort.
func (s *Server) receive(msg sip.Message, perr error, src netip.AddrPort, out sink, release func()) {
	handedOff := false
	defer func() {
		if !handedOff && release != nil {
			release()
		}
	}()
	run := func(h func(context.Context, *inbound), in *inbound) {
		handedOff = true
		s.dispatch(func() {
			if release != nil {
				defer release()
			}
			s.guard(in, h)
		})
	}
	req, isReq := msg.(*sip.Request)
	if perr != nil && !errors.Is(perr, sip.ErrMessageTooLarge) {
		s.stats.parseErrors.Add(1)
	}
	if !isReq || req == nil {
		// Responses (we send no requests), or nothing parsed at all.
		s.stats.dropped.Add(1)
		return
	}
	s.stats.request(string(req.Method))
	via := topVia(req)
	if via == nil || req.Method == sip.ACK {
		// ACK: the only ACKs this server sees are for its own non-2xx
		// answers; they end nothing here, since nothing is kept waiting
		// for them. Without a usable Via nothing can be answered.
		if via == nil {
			s.stats.dropped.Add(1)
		}
		return
	}
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	in := &inbound{req: req, via: via, src: src, out: out, arrived: time.Now()}
	// The key uses sent-by as the client wrote it: fixVia adds only
	// parameters.
	fixVia(via, src)
	if out.name() == "udp" {
		in.dest = udpDest(via, src)
	}

	if perr != nil {
		code := 400
		if errors.Is(perr, sip.ErrMessageTooLarge) {
			code = 513 // RFC 3261 §21.5.14; counted where it was found
		}
		s.answer(in, newResponse(req, code, parseFault(perr)))
		return
	}
	if code, reason := requestFault(req); code != 0 {
		s.answer(in, newResponse(req, code, reason))
		return
	}

	switch req.Method {
	case sip.REGISTER:
		in.key = txKey(req, via, req.Method)
		resp, code, fresh := s.txs.begin(in.key)
		if !fresh {
			s.stats.retrans.Add(1)
			if resp != nil {
				s.send(in, resp, code)
			}
			return
		}
		// After the retransmission check, so a retransmission is not
		// counted against the source again (it gets the 503 kept in the
		// table); before the handler, so a flood costs no storage.
		if res := s.registerLimited(req, src.Addr()); res != nil {
			s.answer(in, res)
			return
		}
		run(s.handleRegister, in)
	case sip.CANCEL:
		s.handleCancel(in)
	case sip.OPTIONS:
		if s.cfg.Mode == ModeRegistrar || req.Recipient.User == "" || isZeroMaxForwards(req) {
			s.handleOptions(in)
			return
		}
		run(s.handleRedirect, in)
	default:
		if req.Method == sip.INVITE {
			// Answered statelessly, but remembered so that a CANCEL for
			// it gets 200, not 481.
			s.txs.mark(txKey(req, via, sip.INVITE))
		}
		if s.cfg.Mode == ModeRegistrar {
			s.handleNotAllowed(in)
			return
		}
		run(s.handleRedirect, in)
	}
}

// guard runs a handler with the last-resort recovery: a panic is counted,
// logged with its stack, answered 500 if possible, and its retransmission
// slot released so that a retransmission is handled afresh.
func (s *Server) guard(in *inbound, h func(context.Context, *inbound)) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		s.stats.panics.Add(1)
		s.log.Error("sip: handler panic", "method", in.req.Method, "panic", r, "stack", string(debug.Stack()))
		if in.key != "" {
			s.txs.abandon(in.key)
		}
		defer func() { _ = recover() }()
		if !in.answered {
			s.answer(in, newResponse(in.req, 500, "Server Internal Error"))
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	h(ctx, in)
	if !in.answered && in.key != "" {
		s.txs.abandon(in.key)
	}
}

// receiveSafe is receive behind the last-resort recovery, for the
// transports.
func (s *Server) receiveSafe(msg sip.Message, perr error, src netip.AddrPort, out sink, release func()) {
	defer func() {
		if r := recover(); r != nil {
			s.stats.panics.Add(1)
			s.log.Error("sip: panic handling a message", "src", src, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	s.receive(msg, perr, src, out, release)
}

// receiveDatagram parses and receives one UDP datagram.
func (s *Server) receiveDatagram(data []byte, src netip.AddrPort, out sink) {
	defer func() {
		if r := recover(); r != nil {
			s.stats.panics.Add(1)
			s.log.Error("sip: panic parsing a datagram", "src", src, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	if isKeepAlive(data) {
		return
	}
	if len(data) > s.cfg.MaxMessageSize {
		s.oversizedDatagram(data, src, out)
		return
	}
	msg, err := s.parser.ParseSIP(data)
	s.receive(msg, err, src, out, nil)
}

// isKeepAlive recognises the CRLF keep-alives of RFC 5626 §3.5.1 (and
// stray whitespace), which need no answer over UDP.
func isKeepAlive(data []byte) bool {
	for _, c := range data {
		if c != '\r' && c != '\n' && c != ' ' && c != '\t' && c != 0 {
			return false
		}
	}
	return true
}

func isZeroMaxForwards(req *sip.Request) bool {
	mf := req.MaxForwards()
	return mf != nil && *mf == 0
}

package sipfront

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/overload"
	"github.com/locsvc/locsvc/internal/workpool"
	"github.com/locsvc/locsvc/sipfront/internal/core"
)

// stateless is the front end of registrar and redirect modes: locsvc's
// own transports (UDP, TCP, TLS, WebSocket) feeding the
// core, with a retransmission table in place of sipgo's transaction
// layer, which keeps every UDP server transaction (and, for INVITE, a
// goroutine) alive for up to 32 s and halves throughput.
type stateless struct {
	core   *core.Core
	cfg    *Config
	log    *slog.Logger
	parser *sip.Parser
	// head parses just enough of an oversized datagram to answer it. Its
	// bound is sipgo's default, which no datagram exceeds.
	head *sip.Parser
	txs  *txCache
	// conns are the stream connections, by remote address (flows).
	conns *connTable
	// response takes the responses that arrive (the server sends only
	// NAT keepalives); true: one of its own.
	response func(*sip.Response) bool

	// ctl is overload control (overload.go); nil: off.
	ctl *overload.Controller

	// slots bounds the handlers running at once.
	slots chan struct{}
	// newWork counts the handlers of sheddable requests running, which
	// under overload control may take no more than newWorkCap slots.
	newWork    atomic.Int32
	newWorkCap int32
	// pool runs handlers on standing goroutines (nil until serve).
	pool     *workpool.Pool
	handlers sync.WaitGroup
	// inline runs handlers on the caller's goroutine (tests, fuzzing).
	inline bool

	transports []transport
	stop       chan struct{}
	sweeper    sync.WaitGroup
}

// transport is one listener of the stateless front end. Each reads
// messages, parses them with the front end's parser and hands each to
// receive with the sink its answers go to; see the package doc for how a
// WebSocket transport slots in.
type transport interface {
	start()
	// stopReading stops taking new messages and returns once the readers
	// are gone; answers in hand can still be sent.
	stopReading()
	close() error
}

// sink is where answers to one client go: a UDP socket or a stream
// connection.
type sink interface {
	send(b []byte, to netip.AddrPort) error
	name() string // "udp", "tcp", "tls", "ws" or "wss", as stored in bindings
}

func newStateless(c *core.Core, cfg *Config, conns *connTable, response func(*sip.Response) bool) *stateless {
	fe := &stateless{
		conns:    conns,
		response: response,
		core:     c,
		cfg:      cfg,
		log:      cfg.Logger,
		parser:   sizedParser(cfg),
		head:     core.NewParser(),
		slots:    make(chan struct{}, cfg.MaxInFlight),
		stop:     make(chan struct{}),
	}
	fe.newWorkCap = int32(max(1, cfg.MaxInFlight/newWorkShare))
	fe.txs = newTxCache(cfg.TxCacheSize, c.Clock)
	fe.ctl = newController(cfg.Overload, c, int(fe.newWorkCap))
	return fe
}

func (fe *stateless) serve(ls listeners) error {
	fe.transports = []transport{newUDPTransport(fe, ls.udp, fe.cfg.UDPReaders), newTCPTransport(fe, ls.tcp)}
	if ls.tls != nil {
		fe.transports = append(fe.transports, newTLSTransport(fe, ls.tls, fe.cfg.TLSConfig))
	}
	if ls.ws != nil {
		fe.transports = append(fe.transports, newWSTransport(fe.cfg, fe.core, ls.ws, nil, fe.openWS))
	}
	if ls.wss != nil {
		fe.transports = append(fe.transports, newWSTransport(fe.cfg, fe.core, ls.wss, fe.cfg.TLSConfig, fe.openWS))
	}
	fe.pool = workpool.New(handlerWorkers, fe.stop)
	for _, t := range fe.transports {
		t.start()
	}
	fe.sweeper.Add(1)
	go fe.sweepLoop()
	return nil
}

// close stops reading, lets the requests in hand finish and answer (each
// bounded by RequestTimeout from its arrival), then closes the sockets.
func (fe *stateless) close() error {
	for _, t := range fe.transports {
		t.stopReading()
	}
	fe.handlers.Wait()
	close(fe.stop)
	fe.sweeper.Wait()
	var errs []error
	for _, t := range fe.transports {
		errs = append(errs, t.close())
	}
	return errors.Join(errs...)
}

// inbound is one request, where it came from and where its answers go.
type inbound struct {
	core.Inbound
	via  *sip.ViaHeader // top Via, after FixVia
	dest netip.AddrPort // where UDP answers go
	out  sink
	key  string // transaction key, for requests answered from txcache
	// queued is when a datagram reached the host (kernel timestamp; zero
	// when unknown): overload control's measure starts there.
	queued time.Time
	// answered is set once a final answer went out.
	answered bool
}

// receive takes one parsed message off the wire (perr: sipgo's parse
// error, msg possibly partial) and answers it or hands it to a handler.
// release, if not nil, is called once the message is dealt with (answered
// or dropped), which may be after receive returns.
func (fe *stateless) receive(msg sip.Message, perr error, src netip.AddrPort, out sink, release func()) {
	fe.receiveJudged(msg, perr, src, out, release, time.Time{}, false)
}

// receiveJudged is receive of a datagram that reached the host at queued
// (zero: unknown), which overload control found late already as it was
// read: then it is refused if it is a new REGISTER or INVITE that is not
// a retransmission.
func (fe *stateless) receiveJudged(msg sip.Message, perr error, src netip.AddrPort, out sink, release func(), queued time.Time, late bool) {
	handedOff := false
	defer func() {
		if !handedOff && release != nil {
			release()
		}
	}()
	// Before the request is known a panic can only be counted; after, it
	// is answered too.
	defer fe.core.Recover("receiving a message", nil, nil)
	in := fe.inbound(msg, perr, src, out)
	if in == nil {
		return
	}
	defer fe.core.Recover("handling a message", in.Req, fe.answerOnce(in))
	if perr != nil {
		code := 400
		if errors.Is(perr, sip.ErrMessageTooLarge) {
			code = 513 // RFC 3261 §21.5.14; counted where it was found
		}
		fe.answer(in, core.NewResponse(in.Req, code, core.ParseFault(perr)))
		return
	}
	if res := fe.core.Check(&in.Inbound); res != nil {
		fe.answer(in, res)
		return
	}
	if fe.transaction(in) {
		return
	}
	if late && sheddable(in.Req) && !fe.due(in, queued) {
		fe.answer(in, fe.refusal(in, shedLate))
		return
	}
	in.queued = queued
	if res := fe.core.Quick(&in.Inbound); res != nil {
		fe.answer(in, res)
		return
	}
	// Under overload control a new REGISTER or INVITE that finds the
	// slots for new work taken is refused rather than waited for: a
	// reader waiting for a slot reads nothing, and the socket queue
	// behind it overflows into drops and retransmissions (seen at three
	// times capacity, with handlers slowed by shards starved of CPU).
	handedOff = fe.dispatch(func() {
		if release != nil {
			defer release()
		}
		fe.handle(in)
	}, fe.ctl != nil && sheddable(in.Req))
	if !handedOff {
		fe.answer(in, fe.refusal(in, shedFull))
	}
}

// inbound counts a message and makes it an inbound request, or returns
// nil when it gets no answer at all.
func (fe *stateless) inbound(msg sip.Message, perr error, src netip.AddrPort, out sink) *inbound {
	stats := &fe.core.Stats
	req, isReq := msg.(*sip.Request)
	if perr != nil && !errors.Is(perr, sip.ErrMessageTooLarge) {
		stats.ParseErrors.Add(1)
	}
	if !isReq || req == nil {
		// Answers to NAT keepalives (the only requests sent), other
		// responses, or nothing parsed at all.
		if res, ok := msg.(*sip.Response); ok && perr == nil && fe.response(res) {
			return nil
		}
		stats.Dropped.Add(1)
		return nil
	}
	stats.Request(string(req.Method))
	via := core.TopVia(req)
	if via == nil || req.Method == sip.ACK {
		// ACK: the only ACKs this server sees are for its own non-2xx
		// answers; they end nothing here, since nothing is kept waiting
		// for them. Without a usable Via nothing can be answered.
		if via == nil {
			stats.Dropped.Add(1)
		}
		return nil
	}
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	in := &inbound{Inbound: core.Inbound{Req: req, Src: src, Transport: out.name(), Arrived: time.Now()},
		via: via, out: out}
	// The key uses sent-by as the client wrote it: FixVia adds only
	// parameters.
	core.FixVia(via, src)
	if out.name() == "udp" {
		in.dest = udpDest(via, src)
	} else if ci, ok := fe.conns.get(src); ok {
		in.Conn = ci.id
	}
	return in
}

// transaction is the retransmission table's part (RFC 3261 §17.2 without
// timers): a REGISTER seen before gets its kept answer (or nothing while
// the first copy is handled), a CANCEL is answered by whether the request
// it cancels was seen, and an INVITE is remembered for its CANCEL. It
// reports whether the request was dealt with.
func (fe *stateless) transaction(in *inbound) bool {
	req := in.Req
	switch req.Method {
	case sip.REGISTER:
		in.key = txKey(req, in.via, req.Method)
		resp, code, fresh := fe.txs.begin(in.key)
		if !fresh {
			fe.core.Stats.Retransmissions.Add(1)
			if resp != nil {
				fe.send(in, resp, code)
			}
			return true
		}
	case sip.CANCEL:
		fe.answer(in, fe.cancelAnswer(in))
		return true
	case sip.INVITE:
		// Answered statelessly, but remembered so that a CANCEL for it
		// gets 200, not 481.
		fe.txs.mark(txKey(req, in.via, sip.INVITE))
	}
	return false
}

// cancelAnswer is 200 when the request a CANCEL cancels was seen (its
// final answer has gone out already, so there is nothing left to stop),
// 481 otherwise (RFC 3261 §9.2).
func (fe *stateless) cancelAnswer(in *inbound) *sip.Response {
	req := in.Req
	if fe.txs.has(txKey(req, in.via, sip.INVITE)) || fe.txs.has(txKey(req, in.via, sip.REGISTER)) {
		return core.NewResponse(req, 200, "OK")
	}
	return core.NewResponse(req, 481, "Call/Transaction Does Not Exist")
}

// handle runs the core on a handler goroutine. A request left without an
// answer (or whose handler panicked) gives up its retransmission slot, so
// that a retransmission is handled afresh.
func (fe *stateless) handle(in *inbound) {
	defer fe.core.Recover("in a handler", in.Req, fe.answerOnce(in))
	if !fe.admitted(in) {
		fe.answer(in, fe.refusal(in, shedLate))
		return
	}
	ctx, cancel := fe.core.Context(&in.Inbound)
	defer cancel()
	fe.answer(in, fe.core.Serve(ctx, &in.Inbound))
}

// answerOnce is how the core's recovery answers in: at most one final
// answer, and a claimed retransmission slot is given up first so that the
// 500 is not what a retransmission gets.
func (fe *stateless) answerOnce(in *inbound) func(*sip.Response) {
	return func(res *sip.Response) {
		if in.key != "" {
			fe.txs.abandon(in.key)
		}
		if !in.answered {
			fe.answer(in, res)
		}
	}
}

// answer sends the final response to in and, for a request claimed in the
// retransmission table, keeps it there.
func (fe *stateless) answer(in *inbound, res *sip.Response) {
	fe.addOC(in, res)
	b := core.Render(res)
	if !in.answered && res.StatusCode >= 200 {
		fe.core.Stats.Answered(string(in.Req.Method), time.Since(in.Arrived))
	}
	in.answered = true
	if in.key != "" {
		fe.txs.finish(in.key, b, res.StatusCode)
	}
	fe.send(in, b, res.StatusCode)
}

// send writes an answer already rendered.
func (fe *stateless) send(in *inbound, b []byte, code int) {
	fe.core.Stats.Response(code)
	if err := in.out.send(b, in.dest); err != nil {
		fe.log.Debug("sip: sending response failed", "to", in.dest, "transport", in.out.name(), "err", err)
	}
}

// udpDest is where a UDP response goes (RFC 3261 §18.2.2, RFC 3581): the
// source address (which FixVia made the received= address whenever it
// differs from sent-by), at the source port with rport, else at the
// sent-by port, else 5060.
func udpDest(via *sip.ViaHeader, src netip.AddrPort) netip.AddrPort {
	if _, rport := via.Params.Get("rport"); rport {
		return src
	}
	port := uint16(5060)
	if via.Port > 0 && via.Port <= 65535 {
		port = uint16(via.Port)
	}
	return netip.AddrPortFrom(src.Addr(), port)
}

// receiveDatagram parses and receives one UDP datagram, which reached
// the host at arrived (zero: unknown).
func (fe *stateless) receiveDatagram(data []byte, src netip.AddrPort, arrived time.Time, out sink) {
	fe.receiveDatagramVia(data, src, arrived, out, out)
}

// receiveDatagramVia is receiveDatagram with the refusals decided as the
// datagram is read sent through early, which may hold them until the
// reader's batch ends (a sink that queues must not be handed to a
// handler, which answers later).
func (fe *stateless) receiveDatagramVia(data []byte, src netip.AddrPort, arrived time.Time, out, early sink) {
	defer fe.core.Recover("parsing a datagram", nil, nil)
	if isKeepAlive(data) {
		return
	}
	late := fe.late(arrived)
	why, refuse := shedLate, late
	if fe.newWorkFull() {
		why, refuse = shedFull, true
	}
	if refuse && fe.refuseEarly(data, src, arrived, early, why) {
		return
	}
	if len(data) > fe.cfg.MaxMessageSize {
		fe.oversizedDatagram(data, src, out)
		return
	}
	msg, err := fe.parser.ParseSIP(data)
	fe.receiveJudged(msg, err, src, out, nil, arrived, late)
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

// crlf is the pong to a double-CRLF ping.
var crlf = []byte("\r\n")

// streamKeepAlive is the connection transports' keep-alive rule (RFC 5626
// §3.5.1, §4.4.1): input that is only a keep-alive is no message, and a
// double CRLF among it is a ping that gets a CRLF pong.
func streamKeepAlive(data []byte) (keepAlive, pong bool) {
	if !isKeepAlive(data) {
		return false, false
	}
	return true, bytes.Contains(data, []byte("\r\n\r\n"))
}

func (fe *stateless) sweepLoop() {
	defer fe.sweeper.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-fe.stop:
			return
		case <-t.C:
			fe.txs.sweep()
		}
	}
}

// dispatch runs f on a handler goroutine once a slot is free. With
// shed (a new REGISTER or INVITE under overload control) it runs f only
// if one of the slots new work may take is free now, and reports whether
// f was taken.
func (fe *stateless) dispatch(f func(), shed bool) bool {
	if fe.inline {
		f()
		return true
	}
	if shed {
		if fe.newWork.Add(1) > fe.workCap() {
			fe.newWork.Add(-1)
			return false
		}
		select {
		case fe.slots <- struct{}{}:
		default:
			fe.newWork.Add(-1)
			return false
		}
	} else {
		fe.slots <- struct{}{}
	}
	fe.handlers.Add(1)
	run := func() {
		defer func() {
			if shed {
				fe.newWork.Add(-1)
			}
			<-fe.slots
			fe.handlers.Done()
		}()
		f()
	}
	if fe.pool == nil {
		go run()
		return true
	}
	fe.pool.Run(run)
	return true
}

// newWorkFull reports whether, under overload control, a new REGISTER or
// INVITE would find no slot for new work: the reader then refuses it
// from a scan, as it does one that waited too long.
func (fe *stateless) newWorkFull() bool {
	return fe.ctl != nil && fe.newWork.Load() >= fe.workCap()
}

// workCap is how many new REGISTERs and INVITEs may be in hand now under
// overload control: the controller's bound (internal/overload), never
// more than newWorkCap.
func (fe *stateless) workCap() int32 {
	if fe.ctl == nil {
		return fe.newWorkCap
	}
	if l := int32(fe.ctl.WorkLimit()); l > 0 && l < fe.newWorkCap {
		return l
	}
	return fe.newWorkCap
}

// newWorkShare: new REGISTERs and INVITEs may hold at most one in this
// many handler slots under overload control; the rest stay for requests
// that are never shed (in-dialog requests, CANCEL, retransmissions).
//
// The bound is also what keeps an overloaded node efficient. The
// controller judges the wait before a request's handling starts, not the
// time its handling then takes, and with thousands of handlers in flight
// that time grows with contention: for the scheduler, channels and timers
// of the memcached client, and the collector scanning their stacks. At
// twice capacity (make bench-overload, 2 x C), with every slot open to
// new work (4,096), goodput was 0.70 to 0.81 of C and 0.5 to 1.5 % of
// REGISTERs were retransmitted (six runs); with new work held to 128,
// 256, 512, 1,024 or 2,048 slots, 0.85 to 0.95 of C and none
// retransmitted (one run each). Runs of one binary differ by more than
// 0.1 C on the test machine, so those sizes are not told apart; a
// quarter is in the middle of them, and leaves the never-shed requests
// three times as many. While the node is refusing, the bound is tighter
// still (handlerWorkers; internal/overload's WorkLimit).
const newWorkShare = 4

// handlerWorkers is how many handler goroutines stand ready; more run on
// goroutines of their own while a burst lasts. It is also the bound on
// new REGISTERs and INVITEs in hand while the node is refusing: at three
// times capacity, a bound past it cost goodput (docs/limits.md).
const handlerWorkers = 128

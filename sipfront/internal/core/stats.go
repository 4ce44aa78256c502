package core

import (
	"sync/atomic"
	"time"

	"github.com/locsvc/locsvc/internal/histogram"
	"github.com/locsvc/locsvc/locsvc"
)

// Stats are the front end's counters since Start.
type Stats struct {
	// Requests counts requests by method; methods outside the common set
	// count as "OTHER".
	Requests map[string]uint64
	// Responses counts responses sent by status code, answers repeated
	// from the retransmission table included.
	Responses map[int]uint64
	// Retransmissions counts requests answered from (or, while the first
	// copy was still being handled, absorbed by) the retransmission table.
	Retransmissions uint64
	// ParseErrors counts messages sipgo could not parse.
	ParseErrors uint64
	// Dropped counts input that got no answer: unparseable or
	// unaddressable (no usable Via) messages, responses, TCP connections
	// over the limit.
	Dropped uint64
	// Panics counts handler panics recovered; each is a bug.
	Panics uint64
	// TCPConns is the number of open TCP connections (TLS included).
	TCPConns int64
	// WSConns is the number of open WebSocket connections (ws and wss),
	// counted apart from TCPConns: they are bounded apart too.
	WSConns int64
	// WSRefused counts WebSocket upgrades refused: no "sip" subprotocol,
	// an Origin not allowed, not a WebSocket handshake, or over the
	// connection limit.
	WSRefused uint64
	// FlowsUnbound counts bindings removed because the connection they
	// were registered over (their flow) closed.
	FlowsUnbound uint64
	// NATPinged is the number of phones behind NAT this node keeps alive
	// (its own, and those it took over); NATPings the keepalives sent,
	// NATAnswers the OPTIONS answered, NATMisses those that were not
	// answered by the next turn, NATUnbound the bindings removed after
	// too many misses in a row.
	NATPinged                                   int64
	NATPings, NATAnswers, NATMisses, NATUnbound uint64
	// Limited counts requests refused by a limit, by the limit's name
	// (LimitRegisterRate, LimitMessageSize, ...; docs/limits.md). Every
	// limit is present, hit or not, so that its metric exists from the
	// start and a rate over it is defined.
	Limited map[string]uint64
	// AnswerTimes is, by method, the time from a request's arrival to the
	// final answer the front end itself sent (registrar and redirect
	// answers, refusals; not responses relayed by proxy mode).
	AnswerTimes map[string]Histogram
	// Shed counts new requests refused (503) for overload, by reason
	// (ShedQueueDelay, ShedInFlight, ShedRegisterRate).
	Shed map[string]uint64
	// QueueDelay is how long UDP requests waited between reaching the
	// host and being read, when overload control is on.
	QueueDelay Histogram
	// Overload is the admission signal of the last window (zero when
	// overload control is off).
	Overload OverloadSignal
}

// OverloadSignal is what overload control saw in its last window: the
// shortest queueing delay, whether a standing queue made it refuse, the
// percentage refused, the phones told when to come back, and how many
// came and were taken for it so far.
type OverloadSignal struct {
	MinDelay time.Duration
	Standing bool
	Loss     int
	Booked   int
	Kept     int64
	// WorkLimit is the bound on new requests in hand (overload.Controller.WorkLimit).
	WorkLimit int
}

// Shed reasons, as counted in Stats.Shed and exported as the reason label
// of locsvc_sip_shed_total.
const (
	// ShedQueueDelay: overload control refused a new REGISTER or INVITE
	// that waited too long in the queue (503 with Retry-After).
	ShedQueueDelay = "queue_delay"
	// ShedInFlight: overload control refused a new REGISTER or INVITE
	// because the handler slots new work may take were all taken (503
	// with Retry-After).
	ShedInFlight = "in_flight"
	// ShedRegisterRate: a source over --register-rate (also counted as
	// the limit of that name).
	ShedRegisterRate = "register_rate"
)

// QueueBuckets are the upper bounds of the queueing delay histogram:
// from nothing to far past T1.
var QueueBuckets = []time.Duration{100 * time.Microsecond, time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second}

// Histogram is one method's answer times (internal/histogram: one way of
// timing things for every component).
type Histogram = histogram.Snapshot

// AnswerBuckets are the upper bounds of the answer-time histogram: from a
// fast in-memory answer to a memcached call that hit its timeout.
var AnswerBuckets = []time.Duration{250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond,
	2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second}

// answerSnapshot reads h, and whether it counted anything: methods never
// answered stay out of Stats.
func answerSnapshot(h *histogram.Histogram) (Histogram, bool) {
	out := h.Snapshot()
	return out, out.Count > 0
}

// Limit names, as counted in Stats.Limited and exported as the limit
// label of locsvc_sip_limited_total.
const (
	// LimitRegisterRate: REGISTERs from one source over Config.RegisterRate
	// (503).
	LimitRegisterRate = "register_rate"
	// LimitMessageSize: a message over Config.MaxMessageSize (513, or
	// dropped when it cannot be answered).
	LimitMessageSize = "message_size"
	// LimitContacts: too many contacts for the AoR (403).
	LimitContacts = locsvc.LimitContacts
	// LimitURILength: an AoR, contact or Path URI over the URI length
	// limit (400).
	LimitURILength = locsvc.LimitURILength
	// LimitFieldLength: Call-ID, User-Agent, +sip.instance or the source
	// over the field length limit (400).
	LimitFieldLength = locsvc.LimitFieldLength
	// LimitPathEntries: more Path entries than allowed (400).
	LimitPathEntries = locsvc.LimitPathEntries
)

var limitNames = [...]string{LimitRegisterRate, LimitMessageSize, LimitContacts, LimitURILength,
	LimitFieldLength, LimitPathEntries}

var knownMethods = [...]string{"REGISTER", "INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "MESSAGE",
	"SUBSCRIBE", "NOTIFY", "PUBLISH", "REFER", "INFO", "UPDATE", "PRACK", "OTHER"}

// Counters are the live counters behind Stats. Front ends count what
// only they see (parse errors, drops, connections) in the exported
// fields; the methods count what has a name or a code.
type Counters struct {
	requests        [len(knownMethods)]atomic.Uint64
	responses       [600]atomic.Uint64 // index: code-100
	Retransmissions atomic.Uint64
	ParseErrors     atomic.Uint64
	Dropped         atomic.Uint64
	Panics          atomic.Uint64
	TCPConns        atomic.Int64
	WSConns         atomic.Int64
	WSRefused       atomic.Uint64
	FlowsUnbound    atomic.Uint64
	NATPinged       atomic.Int64
	NATPings        atomic.Uint64
	NATAnswers      atomic.Uint64
	NATMisses       atomic.Uint64
	NATUnbound      atomic.Uint64
	limited         [len(limitNames)]atomic.Uint64
	answerTimes     [len(knownMethods)]*histogram.Histogram
	// ShedQueueDelay and ShedInFlight count refusals by overload control,
	// by reason.
	ShedQueueDelay atomic.Uint64
	ShedInFlight   atomic.Uint64
	queueDelay     *histogram.Histogram
	// Signal, when set, reads overload control's last window.
	Signal func() OverloadSignal
}

// init makes the histograms (New calls it).
func (c *Counters) init() {
	for i := range c.answerTimes {
		c.answerTimes[i] = histogram.New(AnswerBuckets)
	}
	c.queueDelay = histogram.New(QueueBuckets)
}

// Queued records how long a request waited before it was read.
func (c *Counters) Queued(d time.Duration) { c.queueDelay.Observe(d) }

// Answered records how long a request of this method waited for its final
// answer.
func (c *Counters) Answered(method string, d time.Duration) {
	c.answerTimes[methodIndex(method)].Observe(d)
}

// Limit counts a hit of the named limit (one of the Limit names).
func (c *Counters) Limit(name string) {
	for i, n := range limitNames {
		if n == name {
			c.limited[i].Add(1)
			return
		}
	}
}

// Request counts a request by method.
func (c *Counters) Request(method string) {
	c.requests[methodIndex(method)].Add(1)
}

// methodIndex places a method in knownMethods; others count as "OTHER".
func methodIndex(method string) int {
	for i, m := range knownMethods[:len(knownMethods)-1] {
		if m == method {
			return i
		}
	}
	return len(knownMethods) - 1
}

// Response counts a response sent, by status code.
func (c *Counters) Response(code int) {
	if code >= 100 && code < 700 {
		c.responses[code-100].Add(1)
	}
}

// Snapshot copies the counters into a Stats value.
func (c *Counters) Snapshot() Stats {
	s := Stats{
		Requests:        make(map[string]uint64),
		Responses:       make(map[int]uint64),
		Retransmissions: c.Retransmissions.Load(),
		ParseErrors:     c.ParseErrors.Load(),
		Dropped:         c.Dropped.Load(),
		Panics:          c.Panics.Load(),
		TCPConns:        c.TCPConns.Load(),
		WSConns:         c.WSConns.Load(),
		WSRefused:       c.WSRefused.Load(),
		FlowsUnbound:    c.FlowsUnbound.Load(),
		NATPinged:       c.NATPinged.Load(),
		NATPings:        c.NATPings.Load(),
		NATAnswers:      c.NATAnswers.Load(),
		NATMisses:       c.NATMisses.Load(),
		NATUnbound:      c.NATUnbound.Load(),
		Limited:         make(map[string]uint64),
		AnswerTimes:     make(map[string]Histogram),
	}
	for i := range c.answerTimes {
		if h, ok := answerSnapshot(c.answerTimes[i]); ok {
			s.AnswerTimes[knownMethods[i]] = h
		}
	}
	for i := range c.limited {
		s.Limited[limitNames[i]] = c.limited[i].Load()
	}
	s.Shed = map[string]uint64{ShedQueueDelay: c.ShedQueueDelay.Load(), ShedInFlight: c.ShedInFlight.Load(),
		ShedRegisterRate: s.Limited[LimitRegisterRate]}
	s.QueueDelay = c.queueDelay.Snapshot()
	if c.Signal != nil {
		s.Overload = c.Signal()
	}
	for i := range c.requests {
		if n := c.requests[i].Load(); n > 0 {
			s.Requests[knownMethods[i]] = n
		}
	}
	for i := range c.responses {
		if n := c.responses[i].Load(); n > 0 {
			s.Responses[i+100] = n
		}
	}
	return s
}

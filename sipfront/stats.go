package sipfront

import (
	"sync/atomic"

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
	// TCPConns is the number of open TCP connections.
	TCPConns int64
	// Limited counts requests refused by a limit, by the limit's name
	// (LimitRegisterRate, LimitMessageSize, ...; docs/limits.md). Every
	// limit is present, hit or not, so that its metric exists from the
	// start and a rate over it is defined.
	Limited map[string]uint64
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

type counters struct {
	requests    [len(knownMethods)]atomic.Uint64
	responses   [600]atomic.Uint64 // index: code-100
	retrans     atomic.Uint64
	parseErrors atomic.Uint64
	dropped     atomic.Uint64
	panics      atomic.Uint64
	tcpConns    atomic.Int64
	limited     [len(limitNames)]atomic.Uint64
}

// limit counts a hit of the named limit (one of limitNames).
func (c *counters) limit(name string) {
	for i, n := range limitNames {
		if n == name {
			c.limited[i].Add(1)
			return
		}
	}
}

func (c *counters) request(method string) {
	for i, m := range knownMethods[:len(knownMethods)-1] {
		if m == method {
			c.requests[i].Add(1)
			return
		}
	}
	c.requests[len(knownMethods)-1].Add(1)
}

func (c *counters) response(code int) {
	if code >= 100 && code < 700 {
		c.responses[code-100].Add(1)
	}
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Requests:        make(map[string]uint64),
		Responses:       make(map[int]uint64),
		Retransmissions: c.retrans.Load(),
		ParseErrors:     c.parseErrors.Load(),
		Dropped:         c.dropped.Load(),
		Panics:          c.panics.Load(),
		TCPConns:        c.tcpConns.Load(),
		Limited:         make(map[string]uint64),
	}
	for i := range c.limited {
		s.Limited[limitNames[i]] = c.limited[i].Load()
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

package sipfront

import "sync/atomic"

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
}

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

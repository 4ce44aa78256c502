package sipfront

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// txLifetime is how long an answer is kept for retransmissions: Timer J
// (64*T1), after which a UAC has given up retransmitting.
const txLifetime = 32 * time.Second

// txCache is the registrar's replacement for server transactions: the
// final answers of recent requests, so that a retransmission gets the same
// answer without running the request again. Every entry lives the same
// time, so insertion order is expiry order: a FIFO beside the map lets one
// periodic sweep (and the size bound) drop the oldest entries without a
// timer per entry.
type txCache struct {
	mu   sync.Mutex
	m    map[string]*txEntry
	fifo []txRef // oldest first, from head
	head int
	max  int
	now  func() time.Time
}

type txEntry struct {
	born time.Time
	// resp is the final answer; nil while the first copy is being handled,
	// and for keys remembered without an answer (mark).
	resp []byte
	code int
}

type txRef struct {
	key string
	e   *txEntry
}

func newTxCache(max int, now func() time.Time) *txCache {
	return &txCache{m: make(map[string]*txEntry), max: max, now: now}
}

// begin claims key for a request seen for the first time (fresh). For a
// known key it returns the final answer kept for it, or nil while the
// first copy is still being handled.
func (c *txCache) begin(key string) (resp []byte, code int, fresh bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		return e.resp, e.code, false
	}
	c.insert(key, &txEntry{born: c.now()})
	return nil, 0, true
}

// finish records the final answer to a request claimed with begin.
func (c *txCache) finish(key string, resp []byte, code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		e.resp, e.code = resp, code
	}
}

// abandon forgets a claimed key that got no answer, so that a
// retransmission is handled afresh.
func (c *txCache) abandon(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok && e.resp == nil {
		delete(c.m, key)
	}
}

// mark remembers key without an answer (a stateless redirect), so that a
// CANCEL can find it.
func (c *txCache) mark(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok {
		c.insert(key, &txEntry{born: c.now()})
	}
}

func (c *txCache) has(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[key]
	return ok
}

func (c *txCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func (c *txCache) insert(key string, e *txEntry) {
	for len(c.m) >= c.max && c.popOldest() {
	}
	c.m[key] = e
	c.fifo = append(c.fifo, txRef{key, e})
}

// sweep drops entries older than txLifetime.
func (c *txCache) sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	limit := c.now().Add(-txLifetime)
	for c.head < len(c.fifo) && !c.fifo[c.head].e.born.After(limit) {
		c.popOldest()
	}
}

// popOldest removes the oldest FIFO entry and its map entry, if the map
// still holds that same entry. It reports whether the FIFO had one.
func (c *txCache) popOldest() bool {
	if c.head >= len(c.fifo) {
		return false
	}
	r := c.fifo[c.head]
	c.fifo[c.head] = txRef{}
	c.head++
	if c.m[r.key] == r.e {
		delete(c.m, r.key)
	}
	// Reclaim the consumed front once it is most of the slice.
	if c.head > 1024 && c.head*2 > len(c.fifo) {
		n := copy(c.fifo, c.fifo[c.head:])
		clear(c.fifo[n:])
		c.fifo = c.fifo[:n]
		c.head = 0
	}
	return true
}

// txKey identifies a server transaction (RFC 3261 §17.2.3): the top Via's
// branch and sent-by, and the method (ACK and CANCEL share the INVITE's
// branch; method tells them apart). A request without an RFC 3261 branch
// falls back to the RFC 2543 identifiers. method overrides the request's
// own, so that a CANCEL can look up the transaction it cancels.
func txKey(req *sip.Request, via *sip.ViaHeader, method sip.RequestMethod) string {
	branch, _ := via.Params.Get("branch")
	if strings.HasPrefix(branch, "z9hG4bK") {
		return txKeyRFC3261(branch, via.Host, via.Port, method)
	}
	var b strings.Builder
	b.WriteString("2543|")
	b.WriteString(req.Recipient.String())
	if from := req.From(); from != nil {
		tag, _ := from.Params.Get("tag")
		b.WriteString("|" + tag)
	}
	if id := req.CallID(); id != nil {
		b.WriteString("|" + string(*id))
	}
	if cs := req.CSeq(); cs != nil {
		b.WriteString("|" + strconv.FormatUint(uint64(cs.SeqNo), 10))
	}
	b.WriteString("|" + branch)
	writeSentBy(&b, via.Host, via.Port, method)
	return b.String()
}

// txKeyRFC3261 is txKey of a request with an RFC 3261 branch, from the
// top Via's parts: what the early refusal (overload.go) looks up without
// a parsed request.
func txKeyRFC3261(branch, host string, port int, method sip.RequestMethod) string {
	var b strings.Builder
	b.Grow(len(branch) + len(host) + 20)
	b.WriteString(branch)
	writeSentBy(&b, host, port, method)
	return b.String()
}

func writeSentBy(b *strings.Builder, host string, port int, method sip.RequestMethod) {
	b.WriteByte('|')
	b.WriteString(strings.ToLower(host))
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(port))
	b.WriteByte('|')
	b.WriteString(string(method))
}

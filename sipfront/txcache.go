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

// hasBytes is has for a key held as bytes, looked up without a copy.
func (c *txCache) hasBytes(key []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[string(key)]
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
	b := append(make([]byte, 0, 128), "2543|"...)
	b = append(b, req.Recipient.String()...)
	if from := req.From(); from != nil {
		tag, _ := from.Params.Get("tag")
		b = append(append(b, '|'), tag...)
	}
	if id := req.CallID(); id != nil {
		b = append(append(b, '|'), *id...)
	}
	if cs := req.CSeq(); cs != nil {
		b = strconv.AppendUint(append(b, '|'), uint64(cs.SeqNo), 10)
	}
	b = append(append(b, '|'), branch...)
	return string(appendSentBy(b, via.Host, via.Port, method))
}

// txKeyRFC3261 is txKey of a request with an RFC 3261 branch, from the
// top Via's parts.
func txKeyRFC3261(branch, host string, port int, method sip.RequestMethod) string {
	return string(appendTxKeyRFC3261(make([]byte, 0, len(branch)+len(host)+20), branch, host, port, method))
}

// appendTxKeyRFC3261 appends txKeyRFC3261's key to dst, from the parts
// as a parsed request holds them (strings) or as a scan does (bytes): the
// early refusal (overload.go) looks a key up with no allocation.
func appendTxKeyRFC3261[T ~string | ~[]byte](dst []byte, branch, host T, port int, method sip.RequestMethod) []byte {
	return appendSentBy(append(dst, branch...), host, port, method)
}

// appendSentBy appends the sent-by and method part of a key. Host names
// are ASCII and compare without case (RFC 3261 §19.1.4).
func appendSentBy[T ~string | ~[]byte](dst []byte, host T, port int, method sip.RequestMethod) []byte {
	dst = append(dst, '|')
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	dst = strconv.AppendInt(append(dst, ':'), int64(port), 10)
	return append(append(dst, '|'), method...)
}

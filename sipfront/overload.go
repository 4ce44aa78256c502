package sipfront

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/overload"
	"github.com/locsvc/locsvc/internal/siphead"
	"github.com/locsvc/locsvc/sipfront/internal/core"
)

// Overload control of the stateless front end (internal/overload has the
// rule). A request is judged twice: as a UDP datagram is read, on its
// wait in the socket queue (kernel receive timestamp), which is invisible
// to the server unless measured; and as its handling starts, on its whole
// wait, socket queue and the requests taken in before it (a stream's from
// when it was read: TCP holds its sender back once the server stops
// reading).
//
// What is refused: a new REGISTER or INVITE (no To tag), and nothing
// else. ACK, CANCEL, BYE and every request inside a dialog finish work
// already admitted and cost little; keepalives are answered before any
// of this. A retransmission of a request already taken is absorbed by
// the retransmission table as always (it finds its key there), so a
// phone never gets a 503 for a request that is being served.
//
// Where: a datagram late as it is read is refused on the reading
// goroutine before it is parsed, from a scan of its bytes
// (internal/siphead), with no storage call and nothing kept; a request
// the scan cannot read takes the ordinary path and is refused there,
// after a full parse. One late as its handling starts is refused by its
// handler before the store is called.

// late is overload control's check as a datagram that reached the host
// at arrived (zero: unknown) is read: whether it waited too long already.
func (fe *stateless) late(arrived time.Time) bool {
	if fe.ctl == nil || arrived.IsZero() {
		return false
	}
	now := time.Now()
	return fe.ctl.Late(now, now.Sub(arrived))
}

// admitted is overload control's verdict as the handling of in starts,
// on its whole wait since it reached the host (or was read, for a
// stream). Every request handled counts toward the signal; only a new
// REGISTER or INVITE is refused.
func (fe *stateless) admitted(in *inbound) bool {
	if fe.ctl == nil {
		return true
	}
	since := in.queued
	if since.IsZero() {
		since = in.Arrived
	}
	now := time.Now()
	delay := max(0, now.Sub(since))
	fe.core.Stats.Queued(delay)
	shed := sheddable(in.Req)
	var key uint64
	if shed {
		key = callKey(in.Req)
	}
	return fe.ctl.Admit(now, delay, max(0, now.Sub(in.Arrived)), key) || !shed
}

// callKey is the appointment key of a request's phone (its Call-ID).
func callKey(req *sip.Request) uint64 {
	cid := req.CallID()
	if cid == nil {
		return 0
	}
	return overload.CallKey(cid.Value())
}

// due reports whether a new REGISTER or INVITE judged late, which
// reached the host at arrived, comes for its appointment, and so goes on
// to be taken by its handler.
func (fe *stateless) due(in *inbound, arrived time.Time) bool {
	if fe.ctl == nil || arrived.IsZero() {
		return false
	}
	now := time.Now()
	return fe.ctl.Due(now, now.Sub(arrived), callKey(in.Req))
}

// refuseEarly answers a refused datagram from a scan of its bytes when it
// is a new REGISTER or INVITE that is not a retransmission. It reports
// false when the ordinary path must decide.
// why is the reason it would be refused.
func (fe *stateless) refuseEarly(data []byte, src netip.AddrPort, arrived time.Time, out sink, why shedReason) bool {
	h := heads.Get().(*siphead.Head)
	defer heads.Put(h)
	method, ok := newRequest(h, data)
	if !ok {
		return false
	}
	var kb [160]byte
	if fe.txs.hasBytes(appendTxKeyRFC3261(kb[:0], h.Branch, h.Host, h.Port, method)) {
		return false
	}
	return refuseScanned(fe.ctl, &fe.core.Stats, why, h, method, src, arrived, fe.ocValue(h.OC), out, fe.log)
}

// newRequest scans data and reports whether it is a new REGISTER or
// INVITE (no To tag) whose transaction its Via branch names alone (RFC
// 3261's magic cookie), the requests a refusal from a scan may answer.
func newRequest(h *siphead.Head, data []byte) (sip.RequestMethod, bool) {
	if !h.Scan(data) || h.ToTag || !bytes.HasPrefix(h.Branch, []byte("z9hG4bK")) {
		return "", false
	}
	switch {
	case bytes.Equal(h.Method, []byte("REGISTER")):
		return sip.REGISTER, true
	case bytes.Equal(h.Method, []byte("INVITE")):
		return sip.INVITE, true
	}
	return "", false
}

// shedReason is why overload control refuses a request: it says where
// the refusal is counted, and whether a phone back for its appointment
// is taken all the same.
type shedReason int

const (
	// shedLate: the request waited too long (ShedQueueDelay). A phone
	// back for its appointment is still taken, within the hard bound.
	shedLate shedReason = iota
	// shedFull: the handler slots new work may take are all taken
	// (ShedInFlight). No one is taken: the handler would refuse a phone
	// back for its appointment too, after the parse; refused here it is
	// booked again for the same cost as any refusal (at twice capacity
	// that was 8 % more goodput).
	shedFull
)

func (r shedReason) counter(stats *core.Counters) *atomic.Uint64 {
	if r == shedFull {
		return &stats.ShedInFlight
	}
	return &stats.ShedQueueDelay
}

// refuseScanned answers the scanned request h, which reached the host at
// arrived and is no retransmission of one being served, with a 503 and
// the Retry-After of its phone's appointment, unless, refused for why,
// the phone comes back for its appointment and is taken (false: the
// handler takes it).
func refuseScanned(ctl *overload.Controller, stats *core.Counters, why shedReason, h *siphead.Head, method sip.RequestMethod,
	src netip.AddrPort, arrived time.Time, oc string, out sink, log *slog.Logger) bool {
	now := time.Now()
	key := overload.CallKey(h.CallID)
	if why == shedLate && ctl.Due(now, now.Sub(arrived), key) {
		return false
	}
	stats.Request(string(method))
	why.counter(stats).Add(1)
	stats.Response(503)
	buf := refusalBufs.Get().(*[]byte)
	var tag [16]byte
	b := h.Refusal((*buf)[:0], src, ctl.Appoint(now, key), appendEarlyTag(tag[:0], h.Branch, h.CallID), oc)
	dest := src
	if !h.Rport {
		port := uint16(5060)
		if h.Port != 0 {
			port = uint16(h.Port)
		}
		dest = netip.AddrPortFrom(src.Addr(), port)
	}
	if err := out.send(b, dest); err != nil {
		log.Debug("sip: sending a refusal failed", "to", dest, "err", err)
	}
	*buf = b
	refusalBufs.Put(buf)
	return true
}

var (
	refusalBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
	heads       = sync.Pool{New: func() any { return new(siphead.Head) }}
)

// sheddable is what overload control may refuse: a new REGISTER or
// INVITE.
func sheddable(req *sip.Request) bool {
	if req.Method != sip.REGISTER && req.Method != sip.INVITE {
		return false
	}
	to := req.To()
	return to != nil && !to.Params.Has("tag")
}

// refusal is the ordinary path's 503 for overload, refused for why.
func (fe *stateless) refusal(in *inbound, why shedReason) *sip.Response {
	return refusalOf(fe.ctl, &fe.core.Stats, why, in.Req)
}

// refusalOf is the 503 for overload of a parsed request, with the
// Retry-After of the phone's appointment, counted in stats for why.
func refusalOf(ctl *overload.Controller, stats *core.Counters, why shedReason, req *sip.Request) *sip.Response {
	why.counter(stats).Add(1)
	res := core.NewResponse(req, 503, "Service Unavailable")
	res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(ctl.Appoint(time.Now(), callKey(req)))))
	return res
}

// newController is the overload controller of cfg, reporting its signal
// in c's statistics, with at most maxWork new requests in hand (0: no
// bound); nil when overload control is off.
func newController(o Overload, c *core.Core, maxWork int) *overload.Controller {
	if o.Target <= 0 {
		return nil
	}
	ctl := overload.New(overload.Config{Target: o.Target, Interval: o.Interval,
		RetryMin: o.RetryAfterMin, RetryMax: o.RetryAfterMax,
		Work: min(handlerWorkers, maxWork), MaxWork: maxWork})
	c.Stats.Signal = func() core.OverloadSignal {
		s := ctl.Signal()
		return core.OverloadSignal{MinDelay: s.MinDelay, Standing: s.Standing, Loss: s.Loss, Booked: s.Booked, Kept: s.Kept,
			WorkLimit: ctl.WorkLimit()}
	}
	return ctl
}

// ocValue is the value of RFC 7339's oc parameter and the parameters
// that go with it, for a client that announced support; empty when it
// did not, or when the node does not send them.
func (fe *stateless) ocValue(announced bool) string {
	if !announced || fe.ctl == nil || !fe.cfg.Overload.OC {
		return ""
	}
	s := fe.ctl.Signal()
	// The validity is how long the upstream applies the loss before it
	// needs a fresh value: a few of our windows, so that it follows the
	// controller without flapping on every answer.
	validity := 4 * fe.cfg.Overload.Interval.Milliseconds()
	return strconv.Itoa(s.Loss) + `;oc-algo="loss";oc-validity=` + strconv.FormatInt(validity, 10) +
		";oc-seq=" + strconv.FormatInt(s.Seq/1000, 10) + "." + fmt.Sprintf("%03d", s.Seq%1000)
}

// addOC puts the oc parameters on a response's top Via when the request's
// top Via announced support.
func (fe *stateless) addOC(in *inbound, res *sip.Response) {
	if !fe.cfg.Overload.OC || fe.ctl == nil || !in.via.Params.Has("oc") {
		return
	}
	via := res.Via()
	if via == nil {
		return
	}
	v := fe.ocValue(true)
	// v is "N;k=v;...": sipgo renders each parameter as key=value, and
	// Add replaces the client's own (its "oc", "oc-algo").
	first, rest, _ := strings.Cut(v, ";")
	via.Params.Add("oc", first)
	for _, p := range strings.Split(rest, ";") {
		k, val, _ := strings.Cut(p, "=")
		via.Params.Add(k, val)
	}
}

// appendEarlyTag appends a refusal's To tag to dst: the same for a
// retransmission of the same request (RFC 3261 §8.2.7), different across
// requests.
func appendEarlyTag(dst, branch, callID []byte) []byte {
	h := uint64(14695981039346656037)
	for _, b := range [2][]byte{branch, callID} {
		for _, c := range b {
			h ^= uint64(c)
			h *= 1099511628211
		}
		h ^= 0xff
		h *= 1099511628211
	}
	return strconv.AppendUint(dst, h, 36)
}

package sipfront

import (
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/sipfront/internal/core"
)

// timerC bounds how long an INVITE branch may ring (RFC 3261 §16.6 step 11
// asks for more than 3 minutes).
const timerC = 3*time.Minute + 10*time.Second

// fork sends req to the targets, group by group (sequential forking by
// q, parallel within a group), relays provisional answers, and answers
// the caller (RFC 3261 §16.7): the first 2xx at once (the other branches
// are cancelled), else the best final once every branch has answered, a
// 6xx ending the search. A CANCEL from the caller (sipgo answers it 200
// and the INVITE 487) cancels every pending branch. recordRoute adds this
// node's Record-Route (initial requests). lookedUp is a fork to the
// bindings this node looked up (it is the user's authoritative proxy),
// not a relay to a next hop.
func (p *proxy) fork(req *sip.Request, tx sip.ServerTransaction, groups [][]target, recordRoute, lookedUp bool) {
	f := &forking{p: p, req: req, tx: tx, recordRoute: recordRoute, lookedUp: lookedUp,
		events: make(chan event), stop: make(chan struct{}), canceled: make(chan struct{})}
	defer close(f.stop)
	if req.Method == sip.INVITE {
		var once sync.Once
		tx.OnCancel(func(*sip.Request) { once.Do(func() { close(f.canceled) }) })
		t := time.NewTimer(timerC)
		defer t.Stop()
		f.timerC = t.C
	}
	for _, group := range groups {
		if f.runGroup(group) {
			return
		}
		if i := bestFinal(f.codes); i >= 0 && f.codes[i] >= 600 {
			break
		}
	}
	f.answerBest()
}

// forking is one forked request's state: the branches started and the
// final answers they gave.
type forking struct {
	p           *proxy
	req         *sip.Request
	tx          sip.ServerTransaction
	recordRoute bool
	lookedUp    bool
	events      chan event
	stop        chan struct{} // closed when the fork loop is gone
	canceled    chan struct{} // closed by the caller's CANCEL
	timerC      <-chan time.Time

	started  []*branch
	finals   []*sip.Response
	codes    []int
	timeouts int
}

// runGroup starts a group's branches and waits for their final answers.
// It reports whether the caller has been answered (a 2xx, its CANCEL,
// Timer C), which ends the fork.
func (f *forking) runGroup(group []target) (answered bool) {
	live := 0
	for _, t := range group {
		if f.startBranch(t) {
			live++
		}
	}
	for live > 0 {
		select {
		case e := <-f.events:
			if !e.final {
				f.p.respond(f.tx, upstream(e.res, f.req))
				continue
			}
			live--
			if flowFailed(e) && len(e.b.alts) > 0 && f.startBranch(nextFlow(e.b.alts)) {
				// RFC 5626 §5.3: the instance's next flow, in its place.
				live++
				continue
			}
			if f.final(e) {
				return true
			}
		case <-f.canceled:
			// sipgo has answered 487: take its ACK.
			f.cancelAll()
			f.p.finalToInvite(f.tx, nil)
			return true
		case <-f.timerC:
			f.cancelAll()
			f.p.finalToInvite(f.tx, core.NewResponse(f.req, 408, "Request Timeout"))
			return true
		}
	}
	return false
}

// startBranch sends the branch to t or, when it cannot be sent (its flow
// has failed, its connection is gone), to the first of t's alternatives
// that can; it reports whether one was sent. The branch keeps the
// alternatives left after it.
func (f *forking) startBranch(t target) bool {
	for {
		out, wire, err := f.p.branchRequest(f.req, t, f.recordRoute)
		if err == nil {
			b := &branch{p: f.p, caller: f.req, req: out, wire: wire, alts: t.alts}
			if err = b.start(f.events, f.stop); err == nil {
				f.started = append(f.started, b)
				return true
			}
		}
		f.p.log.Debug("sip: branch not sent", "target", t.uri, "err", err)
		if len(t.alts) == 0 {
			return false
		}
		t = nextFlow(t.alts)
	}
}

// nextFlow is the first of alts, with the rest as its own alternatives.
func nextFlow(alts []target) target {
	t := alts[0]
	t.alts = alts[1:]
	return t
}

// flowFailed reports a branch whose flow is gone: 430 from the node that
// holds it (RFC 5626 §5.3), or no answer at all because the request could
// not be sent on it.
func flowFailed(e event) bool {
	if e.res != nil {
		return e.res.StatusCode == 430
	}
	return e.err != nil && !isTimeout(e.err)
}

// final takes a branch's final answer: a 2xx goes to the caller at once
// (and ends the fork: true), others are kept for answerBest.
func (f *forking) final(e event) bool {
	switch {
	case e.res != nil && e.res.IsSuccess():
		f.p.respond(f.tx, upstream(e.res, f.req))
		f.cancelAll()
		return true
	case e.res != nil:
		f.finals = append(f.finals, e.res)
		f.codes = append(f.codes, e.res.StatusCode)
	case isTimeout(e.err):
		f.timeouts++
	}
	return false
}

func (f *forking) cancelAll() {
	for _, b := range f.started {
		b.cancel()
	}
}

// answerBest answers the caller once no branch gave a 2xx: the best final
// (503 becoming 500, RFC 3261 §16.7 step 6: a 503 does not travel
// upstream), or 408/480 when none answered.
func (f *forking) answerBest() {
	var res *sip.Response
	if i := bestFinal(f.codes); i >= 0 {
		res = upstream(f.finals[i], f.req)
		switch {
		case res.StatusCode == 503:
			res.StatusCode, res.Reason = 500, "Server Internal Error"
		case res.StatusCode == 430 && f.lookedUp:
			// A failed flow is the authoritative proxy's to handle (RFC
			// 5626 §5.3): every flow of the user failed, so it is
			// unavailable.
			res.StatusCode, res.Reason = 480, "Temporarily Unavailable"
		}
	} else {
		code, reason := noAnswerCode(f.timeouts)
		res = core.NewResponse(f.req, code, reason)
	}
	if f.req.Method == sip.INVITE {
		f.p.finalToInvite(f.tx, res)
		return
	}
	f.p.respond(f.tx, res)
}

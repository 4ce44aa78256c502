package sipfront

import (
	"context"
	"strings"
	"sync"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// A branch's state machine: one client transaction of a forked request,
// from sending to its final answer, and its CANCEL (RFC 3261 §9.1,
// §16.6-16.8).

// localAddr is a client request option: a request over UDP leaves from
// the listening socket, so that its answers come back to it.
func (p *proxy) localAddr(_ *sipgo.Client, r *sip.Request) error {
	if strings.EqualFold(r.Transport(), "udp") {
		r.Laddr = p.udpLocal
	}
	return nil
}

// event is what a branch reports to the fork loop.
type event struct {
	b     *branch
	res   *sip.Response // nil when the branch ended without an answer
	err   error
	final bool
}

// branch is one client transaction of a forked request.
type branch struct {
	p      *proxy
	caller *sip.Request // the request forked
	req    *sip.Request
	wire   string // the transport req goes on
	// alts are the instance's flows to try in turn if this one fails.
	alts []target
	tx   sip.ClientTransaction

	mu          sync.Mutex
	provisional bool // a 1xx came: a CANCEL may be sent
	cancelWant  bool
	cancelSent  bool
	done        bool
}

// start sends the branch and reports its responses on events until its
// final one, or until stop closes (the fork loop is gone; the goroutine
// still reads the transaction to its end so that a CANCEL can follow a
// late 1xx). It lives as long as the client transaction, no longer.
func (b *branch) start(events chan<- event, stop <-chan struct{}) error {
	ctx := context.Background()
	tx, err := b.p.client.TransactionRequest(ctx, b.req, b.p.addVia(b.wire), b.p.localAddr)
	if err != nil {
		return err
	}
	b.tx = tx
	report := func(e event) {
		select {
		case events <- e:
		case <-stop:
		}
	}
	// The transaction is left to its timers after the final answer
	// (Timer D re-ACKs a retransmitted non-2xx, Timer M relays a
	// retransmitted 2xx): the goroutine need not wait for them.
	go func() {
		for {
			select {
			case res := <-tx.Responses():
				if res.IsProvisional() {
					b.gotProvisional()
					if res.StatusCode > 100 {
						report(event{b: b, res: res})
					}
					continue
				}
				b.finish()
				if res.IsSuccess() {
					// 2xx retransmissions go upstream statelessly.
					tx.OnRetransmission(func(r *sip.Response) { b.p.relayStateless(r, b.caller) })
				}
				report(event{b: b, res: res, final: true})
				return
			case <-tx.Done():
				b.finish()
				report(event{b: b, err: tx.Err(), final: true})
				return
			}
		}
	}()
	return nil
}

func (b *branch) gotProvisional() { b.mark(func() { b.provisional = true }) }

func (b *branch) finish() {
	b.mu.Lock()
	b.done = true
	b.mu.Unlock()
}

// cancel stops a pending INVITE branch: CANCEL now if it got a 1xx, else
// when one comes (RFC 3261 §9.1); without any, Timer B ends it.
func (b *branch) cancel() {
	if b.req.Method != sip.INVITE {
		return
	}
	b.mark(func() { b.cancelWant = true })
}

// mark sets one of the branch's flags under its lock and sends the CANCEL
// once both halves are in, in either order: a 1xx arrived and the fork
// wants the branch cancelled (and it was not sent, nor the branch done).
func (b *branch) mark(set func()) {
	b.mu.Lock()
	set()
	send := b.provisional && b.cancelWant && !b.cancelSent && !b.done
	b.cancelSent = b.cancelSent || send
	b.mu.Unlock()
	if send {
		b.sendCancel()
	}
}

// sendCancel sends a CANCEL for the branch's INVITE: same Request-URI,
// top Via, Route, Call-ID, From, To and CSeq number (RFC 3261 §9.1), and
// reads its transaction to the end on its own goroutine.
func (b *branch) sendCancel() {
	inv := b.req
	c := sip.NewRequest(sip.CANCEL, inv.Recipient)
	c.AppendHeader(sip.HeaderClone(inv.Via()))
	sip.CopyHeaders("Route", inv, c)
	mf := sip.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	c.AppendHeader(sip.HeaderClone(inv.From()))
	c.AppendHeader(sip.HeaderClone(inv.To()))
	c.AppendHeader(sip.HeaderClone(inv.CallID()))
	c.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	c.SetBody(nil)
	c.SetTransport(inv.Transport())
	c.SetDestination(inv.Destination())
	c.Laddr = inv.Laddr
	tx, err := b.p.client.TransactionRequest(context.Background(), c, func(*sipgo.Client, *sip.Request) error { return nil })
	if err != nil {
		b.p.log.Debug("sip: sending CANCEL failed", "err", err)
		return
	}
	go func() {
		for {
			select {
			case res := <-tx.Responses():
				if !res.IsProvisional() {
					return
				}
			case <-tx.Done():
				return
			}
		}
	}()
}

// upstream is a response from a branch as caller, the request forked,
// gets it: without the Via this node added, bound where caller came
// from: over UDP by its Via (received, rport), on a connection to the
// connection's remote address, over the transport it came on.
func upstream(res *sip.Response, caller *sip.Request) *sip.Response {
	r := res.Clone()
	r.RemoveHeader("Via")
	r.SetTransport(caller.Transport())
	r.SetDestination("")
	if !strings.EqualFold(caller.Transport(), "udp") {
		r.SetDestination(caller.Source())
	}
	return r
}

// relayStateless forwards a response to caller outside any server
// transaction (a retransmitted 2xx).
func (p *proxy) relayStateless(res *sip.Response, caller *sip.Request) {
	if err := p.srv.WriteResponse(upstream(res, caller)); err != nil {
		p.log.Debug("sip: relaying response failed", "err", err)
	}
}

package sipfront

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/overload"
	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/sipfront/internal/core"
)

// overloaded is a front end under overload control whose requests all
// waited a second in the queue, far past its target: it refuses every new
// REGISTER and INVITE.
func overloaded(t *testing.T, loc Locator) *stateless {
	t.Helper()
	cfg := Config{Addr: "127.0.0.1:5060", Domains: []string{"example.com"}, Logger: quietLogger(), Mode: ModeRedirect,
		Overload: Overload{Target: 20 * time.Millisecond, Interval: 100 * time.Millisecond, RetryAfterMin: 2, RetryAfterMax: 9}}
	s, err := New(loc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fe := s.front.(*stateless)
	fe.inline = true
	s.core.SetAddr("127.0.0.1:5060")
	return fe
}

func memService(t *testing.T) *locsvc.Service {
	store := locsvc.NewMemStore(nil, 0)
	t.Cleanup(func() { store.Close() })
	svc, err := locsvc.NewService(store, testLimits(), "n1")
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// answers sends one datagram that waited a second and returns the
// responses sent for it.
func answers(t *testing.T, fe *stateless, text string) []*sip.Response {
	t.Helper()
	rec := &recorder{}
	fe.receiveDatagram([]byte(text), netip.MustParseAddrPort("192.0.2.10:5062"), time.Now().Add(-time.Second), rec)
	var out []*sip.Response
	for _, b := range rec.out {
		m, err := sip.ParseMessage(b)
		if err != nil {
			t.Fatalf("unparseable answer: %v\n%s", err, b)
		}
		out = append(out, m.(*sip.Response))
	}
	return out
}

// Under overload, new REGISTERs and INVITEs get 503 with a Retry-After
// inside the configured range, and the values differ; ACK, CANCEL, BYE,
// requests inside a dialog and OPTIONS are never refused. A request the
// early scan does not read (a folded header) is refused all the same, by
// the ordinary path.
func TestOverloadRefusesOnlyNewRequests(t *testing.T) {
	fe := overloaded(t, memService(t))
	local := "192.0.2.10:5062"
	seen := map[int]bool{}
	for i := range 40 {
		res := answers(t, fe, msg{callID: "c" + strconv.Itoa(i), hdrs: []string{"Contact: <sip:alice@192.0.2.10:5062>"}}.text(local, "udp"))
		if len(res) != 1 {
			t.Fatalf("%d answers to a REGISTER", len(res))
		}
		wantCode(t, res[0], 503)
		ra := res[0].GetHeader("Retry-After")
		if ra == nil {
			t.Fatalf("503 without Retry-After:\n%s", res[0])
		}
		n, err := strconv.Atoi(ra.Value())
		if err != nil || n < 2 || n > 9 {
			t.Fatalf("Retry-After %q outside 2-9", ra.Value())
		}
		seen[n] = true
	}
	if len(seen) < 3 {
		t.Errorf("Retry-After values %v: refused phones would come back together", seen)
	}
	refused := []msg{
		{method: "INVITE", ruri: "sip:alice@example.com"},
		{via: "SIP/2.0/UDP " + local + ";branch=z9hG4bK-folded", hdrs: []string{"Contact: <sip:alice@192.0.2.10>", " ;expires=60"}},
	}
	for _, m := range refused {
		res := answers(t, fe, m.text(local, "udp"))
		if len(res) != 1 || res[0].StatusCode != 503 {
			t.Errorf("%s: answers %v, want one 503", m.method, res)
		}
	}
	never := []msg{
		{method: "ACK", ruri: "sip:alice@192.0.2.10", cseq: "1 ACK", to: "<sip:alice@example.com>;tag=x"},
		{method: "CANCEL", ruri: "sip:alice@example.com", cseq: "1 CANCEL"},
		{method: "BYE", ruri: "sip:alice@192.0.2.10", cseq: "2 BYE", to: "<sip:alice@example.com>;tag=x"},
		{method: "INVITE", ruri: "sip:alice@192.0.2.10", cseq: "3 INVITE", to: "<sip:alice@example.com>;tag=x"},
		{method: "OPTIONS", ruri: "sip:example.com", cseq: "1 OPTIONS"},
	}
	for _, m := range never {
		for _, res := range answers(t, fe, m.text(local, "udp")) {
			if res.StatusCode == 503 {
				t.Errorf("%s refused under overload:\n%s", m.method, res)
			}
		}
	}
	if n := fe.core.Stats.ShedQueueDelay.Load(); n != 42 {
		t.Errorf("%d refusals counted, want 42", n)
	}
}

// slowLocator holds every Register until released, and counts them.
type slowLocator struct {
	Locator
	calls   atomic.Int32
	release chan struct{}
}

func (l *slowLocator) Register(ctx context.Context, req locsvc.Request) (locsvc.Result, error) {
	l.calls.Add(1)
	<-l.release
	return l.Locator.Register(ctx, req)
}

// A retransmission of a REGISTER still in progress, arriving when the
// server is overloaded, is absorbed: no 503, no second storage call, and
// the one answer is the 200.
func TestOverloadAbsorbsRetransmissions(t *testing.T) {
	loc := &slowLocator{Locator: memService(t), release: make(chan struct{})}
	fe := overloaded(t, loc)
	fe.inline = false
	rec := &recorder{}
	src := netip.MustParseAddrPort("192.0.2.10:5062")
	text := []byte(msg{hdrs: []string{"Contact: <sip:alice@192.0.2.10:5062>"}}.text(src.String(), "udp"))

	fe.receiveDatagram(text, src, time.Now(), rec) // admitted: no queue yet
	waitFor(t, "the REGISTER in the store call", func() bool { return loc.calls.Load() == 1 })
	for range 3 {
		fe.receiveDatagram(text, src, time.Now().Add(-time.Second), rec)
	}
	close(loc.release)
	fe.handlers.Wait()
	if n := loc.calls.Load(); n != 1 {
		t.Errorf("%d storage calls for one REGISTER", n)
	}
	wantSoleAnswer(t, rec, "the REGISTER and its retransmissions", 200)
	if n := fe.core.Stats.Retransmissions.Load(); n != 3 {
		t.Errorf("%d retransmissions counted, want 3", n)
	}
}

// An upstream that announces overload control (oc on its Via) gets the
// loss percentage and algorithm on the top Via of answers, refusals
// included; a client that does not, gets none. (Read from the bytes:
// sipgo's own parser garbles quoted Via parameters such as oc-algo.)
func TestOverloadViaOC(t *testing.T) {
	fe := overloaded(t, memService(t))
	fe.cfg.Overload.OC = true
	local := "192.0.2.10:5062"
	src := netip.MustParseAddrPort(local)
	oc := regexp.MustCompile(`^SIP/2.0 503 [^\r]*\r\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=[^;]+;oc=(\d+);oc-algo="loss";oc-validity=400;oc-seq=\d+\.\d{3}\r\n`)
	for _, early := range []bool{true, false} {
		hdrs := []string{"Contact: <sip:alice@192.0.2.10>"}
		if !early {
			hdrs = append(hdrs, " ;expires=60") // folded: the ordinary path
		}
		rec := &recorder{}
		fe.receiveDatagram([]byte(msg{via: "SIP/2.0/UDP " + local + ";branch=" + newBranch() + ";oc", hdrs: hdrs}.text(local, "udp")),
			src, time.Now().Add(-time.Second), rec)
		if len(rec.out) != 1 || !oc.Match(rec.out[0]) {
			t.Errorf("early=%v: want one 503 with oc parameters on the top Via, got:\n%s", early, rec.out)
		}
	}
	res := answers(t, fe, msg{hdrs: []string{"Contact: <sip:alice@192.0.2.10>"}}.text(local, "udp"))
	if res[0].Via().Params.Has("oc") {
		t.Errorf("oc sent to a client that did not announce it: %s", res[0].Via())
	}
}

// discard is a sink that sends nothing.
type discard struct{}

func (discard) send([]byte, netip.AddrPort) error { return nil }
func (discard) name() string                      { return "udp" }

// BenchmarkRefusal is what a refused REGISTER costs the reading
// goroutine (controller, scan, rendering; not the send), beside
// BenchmarkAdmitted, a REGISTER taken on and answered 200 by the
// embedded store on the same path: their ratio is the share of a
// request's cost that shedding it saves.
func BenchmarkRefusal(b *testing.B) {
	benchDatagrams(b, time.Now().Add(-time.Hour))
}

func BenchmarkAdmitted(b *testing.B) {
	benchDatagrams(b, time.Time{})
}

func benchDatagrams(b *testing.B, arrived time.Time) {
	store := locsvc.NewMemStore(nil, 0)
	b.Cleanup(func() { store.Close() })
	svc, err := locsvc.NewService(store, testLimits(), "n1")
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{Addr: "127.0.0.1:5060", Domains: []string{"example.com"}, Logger: quietLogger(), RegisterRate: 0,
		Overload: Overload{Target: 20 * time.Millisecond, Interval: 100 * time.Millisecond, RetryAfterMin: 1, RetryAfterMax: 4}}
	s, err := New(svc, cfg)
	if err != nil {
		b.Fatal(err)
	}
	fe := s.front.(*stateless)
	fe.inline = true
	s.core.SetAddr("127.0.0.1:5060")
	src := netip.MustParseAddrPort("192.0.2.10:5062")
	msgs := make([][]byte, 4096)
	for i := range msgs {
		msgs[i] = []byte(msg{via: "SIP/2.0/UDP 192.0.2.10:5062;rport;branch=z9hG4bK-b" + strconv.Itoa(i),
			callID: "bench-" + strconv.Itoa(i), hdrs: []string{"Contact: <sip:alice@192.0.2.10:5062>", "User-Agent: bench"}}.text(src.String(), "udp"))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// New transactions each round: the table must not answer them.
		if i%len(msgs) == 0 {
			fe.txs = newTxCache(1<<16, time.Now)
		}
		fe.receiveDatagram(msgs[i%len(msgs)], src, arrived, discard{})
		i++
	}
}

// A request taken in as it was read but whose handling starts past the
// limit (it waited behind the others) is refused then, before any store
// call, if it is a new REGISTER or INVITE; a BYE is handled all the same.
func TestOverloadJudgesAtHandlerStart(t *testing.T) {
	loc := &slowLocator{Locator: memService(t), release: make(chan struct{})}
	close(loc.release)
	fe := overloaded(t, loc)
	local := "192.0.2.10:5062"
	src := netip.MustParseAddrPort(local)
	for _, c := range []struct {
		m    msg
		want int
	}{
		{msg{hdrs: []string{"Contact: <sip:alice@192.0.2.10:5062>"}}, 503},
		{msg{method: "BYE", ruri: "sip:alice@192.0.2.10", cseq: "2 BYE", to: "<sip:alice@example.com>;tag=x"}, 404},
	} {
		m, err := sip.ParseMessage([]byte(c.m.text(local, "udp")))
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		in := fe.inbound(m, nil, src, rec)
		in.queued = time.Now().Add(-time.Second)
		fe.handle(in)
		if len(rec.out) != 1 {
			t.Fatalf("%s: %d answers", c.m.method, len(rec.out))
		}
		res, err := sip.ParseMessage(rec.out[0])
		if err != nil {
			t.Fatal(err)
		}
		if got := res.(*sip.Response).StatusCode; (got == 503) != (c.want == 503) {
			t.Errorf("%s: answered %d", c.m.method, got)
		}
	}
	if n := loc.calls.Load(); n != 0 {
		t.Errorf("%d store calls for a refused REGISTER", n)
	}
}

// A phone refused under overload is booked for when its Retry-After
// ends; when it comes back then (same Call-ID, next CSeq, new
// transaction) it is taken though the queue still stands, while a new
// phone arriving with it is refused. Both the early refusal (from the
// scan) and the ordinary one book.
func TestOverloadAppointmentKept(t *testing.T) {
	for _, early := range []bool{true, false} {
		t.Run(fmt.Sprintf("early=%v", early), func(t *testing.T) {
			fe := overloaded(t, memService(t))
			// Retry-After 1 s: the appointment is due at once (a second's
			// grace), so the test need not wait for it.
			fe.ctl = overload.New(overload.Config{Target: 20 * time.Millisecond, Interval: 100 * time.Millisecond, RetryMin: 1, RetryMax: 1})
			// What the server took lately (1,000/s), then a standing queue.
			now := time.Now()
			for i := range 3000 {
				fe.ctl.Admit(now.Add(-3*time.Second+time.Duration(i)*time.Millisecond*9/10), 0, 0, 0)
			}
			for i := range 10 {
				fe.ctl.Admit(now.Add(time.Duration(-250+10*i)*time.Millisecond), 30*time.Millisecond, 0, 0)
			}
			fe.ctl.Admit(now.Add(-100*time.Millisecond), 30*time.Millisecond, 0, 0)
			if !fe.ctl.Signal().Standing {
				t.Fatal("no standing queue")
			}
			local := "192.0.2.10:5062"
			src := netip.MustParseAddrPort(local)
			send := func(callID, cseq string) *sip.Response {
				hdrs := []string{"Contact: <sip:alice@192.0.2.10:5062>"}
				if !early {
					hdrs = append(hdrs, " ;expires=60") // folded: the scan gives up, the ordinary path decides
				}
				rec := &recorder{}
				fe.receiveDatagram([]byte(msg{callID: callID, cseq: cseq, hdrs: hdrs}.text(local, "udp")), src, time.Now().Add(-30*time.Millisecond), rec)
				if len(rec.out) != 1 {
					t.Fatalf("%d answers", len(rec.out))
				}
				m, err := sip.ParseMessage(rec.out[0])
				if err != nil {
					t.Fatal(err)
				}
				return m.(*sip.Response)
			}
			res := send("phone-1", "1 REGISTER")
			wantCode(t, res, 503)
			if ra := res.GetHeader("Retry-After"); ra == nil || ra.Value() != "1" {
				t.Fatalf("Retry-After %v, want 1", ra)
			}
			wantCode(t, send("phone-2", "1 REGISTER"), 503) // a new phone, no appointment
			if early {
				// Back for its appointment while the slots for new work
				// are all taken: refused from the scan, and booked again.
				fe.newWorkCap = 0
				res := send("phone-1", "2 REGISTER")
				wantCode(t, res, 503)
				if ra := res.GetHeader("Retry-After"); ra == nil || ra.Value() != "1" {
					t.Fatalf("Retry-After %v, want 1", ra)
				}
				if n := fe.core.Stats.ShedInFlight.Load(); n != 1 {
					t.Errorf("shed for in_flight: %d, want 1", n)
				}
				fe.newWorkCap = 1
			}
			wantCode(t, send("phone-1", "2 REGISTER"), 200) // back for its appointment
			wantCode(t, send("phone-1", "3 REGISTER"), 503) // the appointment was kept: judged as any other
		})
	}
}

// With every handler slot taken, a new REGISTER is refused at once
// rather than holding up the reader that read it; the one being handled
// still gets its 200.
func TestOverloadRefusesWhenNoHandlerIsFree(t *testing.T) {
	loc := &slowLocator{Locator: memService(t), release: make(chan struct{})}
	fe := overloaded(t, loc)
	fe.inline = false
	fe.slots = make(chan struct{}, 1)
	local := "192.0.2.10:5062"
	src := netip.MustParseAddrPort(local)
	held := &recorder{}
	fe.receiveDatagram([]byte(msg{callID: "held", hdrs: []string{"Contact: <sip:alice@192.0.2.10:5062>"}}.text(local, "udp")), src, time.Now(), held)
	// The first takes the one slot and waits in the store.
	deadline := time.Now().Add(5 * time.Second)
	for loc.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	rec := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fe.receiveDatagram([]byte(msg{callID: "second", hdrs: []string{"Contact: <sip:bob@192.0.2.10:5062>"}}.text(local, "udp")), src, time.Now(), rec)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		close(loc.release)
		t.Fatal("the reader waited for a handler slot")
	}
	close(loc.release)
	wantSoleAnswer(t, rec, "the second REGISTER", 503)
	fe.handlers.Wait()
	wantSoleAnswer(t, held, "the REGISTER being handled", 200)
}

// New REGISTERs and INVITEs may hold only their share of the handler
// slots: past it, a new one is refused as it is read (from the scan, and
// counted as in_flight), while a request that is never shed still gets a
// slot and its answer.
func TestOverloadKeepsSlotsForRequestsNeverShed(t *testing.T) {
	loc := &slowLocator{Locator: memService(t), release: make(chan struct{})}
	fe := overloaded(t, loc)
	fe.inline = false
	fe.slots = make(chan struct{}, 4)
	fe.newWorkCap = 1
	local := "192.0.2.10:5062"
	src := netip.MustParseAddrPort(local)
	held := &recorder{}
	fe.receiveDatagram([]byte(msg{callID: "held", hdrs: []string{"Contact: <sip:alice@192.0.2.10:5062>"}}.text(local, "udp")), src, time.Now(), held)
	waitFor(t, "the first REGISTER in the store call", func() bool { return loc.calls.Load() == 1 })

	late, early := &recorder{}, &recorder{}
	fe.receiveDatagramVia([]byte(msg{callID: "second", hdrs: []string{"Contact: <sip:bob@192.0.2.10:5062>"}}.text(local, "udp")), src, time.Now(), late, early)
	if len(late.out) != 0 || len(early.out) != 1 || !bytes.HasPrefix(early.out[0], []byte("SIP/2.0 503 ")) {
		t.Errorf("second new REGISTER: want one 503 decided as it was read, got %q, then %q", early.out, late.out)
	}
	if got := fe.core.Stats.Snapshot().Shed[core.ShedInFlight]; got != 1 {
		t.Errorf("shed for in_flight: %d, want 1", got)
	}

	// An INVITE inside a dialog (a To tag) is never shed: it takes one of
	// the slots left and is answered by the handler.
	inDialog := &recorder{}
	fe.receiveDatagram([]byte(msg{method: "INVITE", ruri: "sip:bob@example.com", to: "<sip:bob@example.com>;tag=dlg1",
		hdrs: []string{"Contact: <sip:alice@192.0.2.10:5062>"}}.text(local, "udp")), src, time.Now(), inDialog)
	waitFor(t, "the in-dialog INVITE's answer", func() bool {
		inDialog.mu.Lock()
		defer inDialog.mu.Unlock()
		return len(inDialog.out) > 0
	})
	inDialog.mu.Lock()
	if bytes.HasPrefix(inDialog.out[0], []byte("SIP/2.0 503 ")) {
		t.Errorf("in-dialog INVITE refused: %q", inDialog.out[0])
	}
	inDialog.mu.Unlock()

	close(loc.release)
	fe.handlers.Wait()
	if n := fe.newWork.Load(); n != 0 {
		t.Errorf("%d slots for new work still counted taken after every handler ended", n)
	}
	wantSoleAnswer(t, held, "the REGISTER being handled", 200)
}

// wantSoleAnswer fails t unless rec holds exactly one answer, for what,
// and it has code.
func wantSoleAnswer(t *testing.T, rec *recorder, what string, code int) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.out) != 1 {
		t.Fatalf("%s: %d answers, want one %d: %q", what, len(rec.out), code, rec.out)
	}
	m, err := sip.ParseMessage(rec.out[0])
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	wantCode(t, m.(*sip.Response), code)
}

// Once the node refuses, new REGISTERs and INVITEs may hold only as many
// slots as there are standing handlers, until a second passes without a
// refusal; before, the wider bound holds.
func TestOverloadTightensWorkInHand(t *testing.T) {
	fe := overloaded(t, memService(t))
	if got := fe.workCap(); got != fe.newWorkCap {
		t.Fatalf("before any refusal: %d, want %d", got, fe.newWorkCap)
	}
	local := "192.0.2.10:5062"
	res := answers(t, fe, msg{callID: "late", hdrs: []string{"Contact: <sip:alice@192.0.2.10:5062>"}}.text(local, "udp"))
	if len(res) != 1 || res[0].StatusCode != 503 {
		t.Fatalf("a REGISTER a second late: %v, want one 503", res)
	}
	// The next window to close sees the refusal.
	time.Sleep(110 * time.Millisecond)
	fe.late(time.Now())
	if got := fe.workCap(); got != handlerWorkers {
		t.Fatalf("after a refusal: %d, want %d", got, handlerWorkers)
	}
	// A second and more without a refusal, then a window closes.
	time.Sleep(1100 * time.Millisecond)
	fe.late(time.Now())
	if got := fe.workCap(); got != fe.newWorkCap {
		t.Errorf("a second after the last refusal: %d, want %d", got, fe.newWorkCap)
	}
}

package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/sipuri"
	"github.com/locsvc/locsvc/internal/testcerts"
)

// The browser phones themselves, without locsvc: two tabs call each other
// through wireRelay, so that a failing WebRTC test against the real
// binary can be told apart from a browser, JsSIP or ICE problem on the
// machine.

// wireRelay is the least a SIP over WebSocket server can be for JsSIP
// phones: it answers REGISTER 200 as TestWebRTCFarm expects of locsvc
// (the Contact echoed, which JsSIP needs to see, with GRUUs; Require:
// outbound; Flow-Timer: 10) and passes every other message unchanged to
// the connection it names: a request by its Request-URI's user (the
// AoR's, a GRUU's, or the contact's), a response by its top Via's
// sent-by host, which every JsSIP phone makes up for itself. It adds no
// Via and no Record-Route: it only joins the connections.
type wireRelay struct {
	mu    sync.Mutex
	conns map[string]*websocket.Conn // by AoR user, contact user and Via host
	all   []*websocket.Conn
	wg    sync.WaitGroup // connection handlers, which may log to the test
}

func startWireRelay(t *testing.T, certs *testcerts.Certs) string {
	t.Helper()
	r := &wireRelay{conns: map[string]*websocket.Conn{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		c, err := websocket.Accept(w, req, &websocket.AcceptOptions{Subprotocols: []string{"sip"}, InsecureSkipVerify: true})
		if err != nil {
			return
		}
		r.wg.Add(1)
		defer r.wg.Done()
		defer c.CloseNow()
		r.mu.Lock()
		r.all = append(r.all, c)
		r.mu.Unlock()
		for {
			_, b, err := c.Read(req.Context())
			if err != nil {
				return
			}
			r.handle(t, c, b)
		}
	}))
	srv.TLS = certs.ServerTLS(t)
	srv.StartTLS()
	// Upgraded connections outlive srv.Close: close them too, and wait
	// for their handlers, so that none logs after the test.
	t.Cleanup(func() {
		srv.Close()
		r.mu.Lock()
		for _, c := range r.all {
			c.CloseNow()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return "wss://" + srv.Listener.Addr().String()
}

func (r *wireRelay) handle(t *testing.T, from *websocket.Conn, b []byte) {
	msg, err := sip.ParseMessage(b)
	if err != nil {
		return // a keep-alive
	}
	var key string
	switch m := msg.(type) {
	case *sip.Request:
		if m.Method == sip.REGISTER {
			r.register(t, from, m)
			return
		}
		key = m.Recipient.User
	case *sip.Response:
		key = m.Via().Host
	}
	r.mu.Lock()
	to := r.conns[key]
	r.mu.Unlock()
	if to == nil {
		t.Logf("relay: nobody at %q for:\n%s", key, b)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = to.Write(ctx, websocket.MessageText, b)
}

func (r *wireRelay) register(t *testing.T, from *websocket.Conn, req *sip.Request) {
	contact := req.GetHeader("Contact").Value()
	na, err := sipuri.ParseNameAddr(contact)
	if err != nil {
		t.Errorf("relay: REGISTER Contact %q: %v", contact, err)
		return
	}
	u, err := sipuri.Parse(na.URI)
	if err != nil {
		t.Errorf("relay: Contact URI %q: %v", na.URI, err)
		return
	}
	to := req.To().Address
	r.mu.Lock()
	r.conns[to.User] = from
	r.conns[u.User] = from
	r.conns[req.Via().Host] = from
	r.mu.Unlock()
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if inst, ok := na.Param("+sip.instance"); ok {
		aor := "sip:" + to.User + "@" + to.Host
		contact += fmt.Sprintf(`;pub-gruu="%s;gr=%s";temp-gruu="sip:tgruu.%s@%s;gr"`,
			aor, strings.Trim(inst.Value, "<>"), u.User, to.Host)
		res.AppendHeader(sip.NewHeader("Require", "outbound"))
		res.AppendHeader(sip.NewHeader("Flow-Timer", "10"))
	}
	res.AppendHeader(sip.NewHeader("Contact", contact))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = from.Write(ctx, websocket.MessageText, []byte(res.String()))
}

// deskInvite is an INVITE as sipp's scenarios send it (plain RTP, no
// ICE or DTLS), from a WebSocket UA whose Via host is host.
func deskInvite(user, host string) string {
	sdp := "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	return fmt.Sprintf("INVITE sip:%s@localhost SIP/2.0\r\nVia: SIP/2.0/WSS %s;branch=z9hG4bK-desk-1\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:caller@localhost>;tag=desk1\r\nTo: <sip:%s@localhost>\r\n"+
		"Call-ID: desk-1@test\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@%s;transport=ws>\r\n"+
		"Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		user, host, user, host, len(sdp), sdp)
}

// TestBrowserPhones: two browser phones register with wireRelay, which
// answers as locsvc should (GRUUs, outbound); bob's tab calls alice's
// (their Contacts now their public GRUUs), alice answers, media flows
// between the tabs on this machine (fake audio), bob hangs up and both
// calls end. Then a desk phone's INVITE (sipp's plain RTP offer) rings
// alice, who refuses it with 486, which reaches the caller. Only the
// browser, JsSIP, the phone page and TestWebRTCFarm's checks are under
// test here.
func TestBrowserPhones(t *testing.T) {
	certs := testcerts.Generate(t)
	page := ServePhone(t, certs)
	relay := startWireRelay(t, certs)
	b := StartBrowser(t)
	alice := b.OpenPhone(t, "alice", page)
	bob := b.OpenPhone(t, "bob", page)
	regA := alice.Register(relay, "sip:alice@localhost", nil)
	checkJsSIPRegister(t, regA)
	checkOutbound(t, "alice", "sip:alice@localhost", regA, "10")
	regB := bob.Register(relay, "sip:bob@localhost", nil)
	checkOutbound(t, "bob", "sip:bob@localhost", regB, "10")
	if regA.Contact != "<"+regA.PubGRUU+">" {
		t.Errorf("alice's Contact after registering: %s, want her pub-gruu", regA.Contact)
	}

	out := bob.Call("sip:alice@localhost")
	in := alice.NextIncoming(10 * time.Second)
	if got := in.Invite.From().Address.User; got != "bob" {
		t.Errorf("incoming call from %q, want bob", got)
	}
	if c := in.Invite.GetHeader("Contact"); c == nil || !strings.Contains(c.Value(), regB.PubGRUU) {
		t.Errorf("bob's INVITE Contact %v, want his pub-gruu %s", c, regB.PubGRUU)
	}
	alice.Answer(in.Call)
	bob.Await(out, "confirmed", 10*time.Second)
	alice.Await(in.Call, "confirmed", 10*time.Second)
	bl, br := bob.Media(out, 10*time.Second)
	al, ar := alice.Media(in.Call, 10*time.Second)
	t.Logf("media: bob %v <-> %v, alice %v <-> %v", bl, br, al, ar)
	if bl.Address != "127.0.0.1" && al.Address != "127.0.0.1" {
		t.Errorf("neither end of the media is on 127.0.0.1, the only address the phones signal")
	}
	bob.Hangup(out)
	if e := bob.Await(out, "ended", 10*time.Second); e.Originator != "local" {
		t.Errorf("bob's call: %s", e)
	}
	if e := alice.Await(in.Call, "ended", 10*time.Second); e.Originator != "remote" {
		t.Errorf("alice's call: %s", e)
	}

	desk := dialWSWith(t, relay, &http.Client{Transport: &http.Transport{TLSClientConfig: certs.ClientTLS(t, false)}})
	if res := desk.exchange(desk.request("REGISTER", "caller", 1, "Contact: <sip:caller@"+desk.host+";transport=ws>\r\n")); res.StatusCode != 200 {
		t.Fatalf("desk phone REGISTER: %d", res.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := desk.c.Write(ctx, websocket.MessageText, []byte(deskInvite("alice", desk.host))); err != nil {
		t.Fatal(err)
	}
	in = alice.NextIncoming(10 * time.Second)
	alice.Reject(in.Call, 486)
	var final *sip.Response
	for final == nil {
		_, msg, err := desk.c.Read(ctx)
		if err != nil {
			t.Fatalf("desk phone: no final answer: %v", err)
		}
		if m, err := sip.ParseMessage(msg); err == nil {
			if res, ok := m.(*sip.Response); ok && res.StatusCode >= 200 {
				final = res
			}
		}
	}
	if final.StatusCode != 486 {
		t.Errorf("desk phone's call answered %d %s, want 486", final.StatusCode, final.Reason)
	}
}

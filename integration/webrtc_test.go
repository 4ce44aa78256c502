package integration

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/sipuri"
	"github.com/locsvc/locsvc/internal/testcerts"
)

// Browser phones: JsSIP (integration/webrtc) in headless Chromium,
// registering over secure WebSocket with a real `locsvc serve`.

// headerValues are the comma-separated values of every header named name
// (or its compact form), trimmed.
func headerValues(m sip.Message, name string) []string {
	var out []string
	for _, h := range m.GetHeaders(name) {
		for _, v := range strings.Split(h.Value(), ",") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// checkJsSIPRegister checks the REGISTER as JsSIP sends it, which the
// browser tests build on: an outbound (RFC 5626) registration over WSS
// that asks for GRUUs (RFC 5627), its Contact carrying the instance and
// reg-id 1.
func checkJsSIPRegister(t *testing.T, reg Registration) {
	t.Helper()
	req := reg.Request
	if via := req.Via(); via == nil || via.Transport != "WSS" {
		t.Errorf("REGISTER Via %v, want transport WSS", via)
	}
	sup := headerValues(req, "Supported")
	for _, tag := range []string{"path", "gruu", "outbound"} {
		if !slices.Contains(sup, tag) {
			t.Errorf("REGISTER Supported %v lacks %s", sup, tag)
		}
	}
	c := req.GetHeader("Contact")
	if c == nil {
		t.Fatalf("REGISTER without Contact:\n%s", req)
	}
	na, err := sipuri.ParseNameAddr(c.Value())
	if err != nil {
		t.Fatalf("REGISTER Contact %q: %v", c.Value(), err)
	}
	if p, _ := na.Param("reg-id"); p.Value != "1" {
		t.Errorf("REGISTER Contact reg-id %q, want 1: %s", p.Value, c.Value())
	}
	if p, _ := na.Param("+sip.instance"); p.Value != "<urn:uuid:"+reg.Instance+">" {
		t.Errorf("REGISTER Contact +sip.instance %q, want <urn:uuid:%s>: %s", p.Value, reg.Instance, c.Value())
	}
}

// TestWebRTCRegisterWSS: a browser phone (JsSIP with its defaults)
// registers over WSS with one node in redirect mode. Its 200 makes it an
// outbound registration (Require: outbound, Flow-Timer) and the binding
// is stored as a wss flow; when the tab closes, the node drops the
// connection and stops cleanly.
func TestWebRTCRegisterWSS(t *testing.T) {
	certs := testcerts.Generate(t)
	page := ServePhone(t, certs)
	b := StartBrowser(t)
	wss := FreeAddr(t)
	n := StartNode(t, NodeOptions{ID: "webrtc", TLS: certs, Args: []string{
		"--sip-mode", "redirect", "--sip-wss", wss, "--domain", "localhost",
		"--register-rate", "0", "--flow-timer", "30s"}})
	alice := b.OpenPhone(t, "alice", page)

	reg := alice.Register("wss://"+wss, "sip:alice@localhost", nil)
	t.Logf("JsSIP's REGISTER:\n%s", reg.Request)
	t.Logf("its answer:\n%s", reg.Raw)
	checkJsSIPRegister(t, reg)
	res := reg.Response
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER answered %d %s", res.StatusCode, res.Reason)
	}
	if got := headerValues(res, "Require"); !slices.Contains(got, "outbound") {
		t.Errorf("200 Require %v, want outbound", got)
	}
	if got := headerValues(res, "Flow-Timer"); !slices.Equal(got, []string{"30"}) {
		t.Errorf("200 Flow-Timer %v, want 30 (--flow-timer 30s)", got)
	}

	bs := n.Bindings(t, "sip:alice@localhost")
	if len(bs) != 1 {
		t.Fatalf("bindings %v, want one", bs)
	}
	if got := bs[0]; got.Transport != "wss" || got.RegId != 1 || got.Instance != "<urn:uuid:"+reg.Instance+">" || got.Node != "webrtc" {
		t.Errorf("binding %v, want transport wss, reg-id 1, instance %s, node webrtc", got, reg.Instance)
	}
	if got := metric(t, n, "locsvc_sip_ws_connections"); got != "locsvc_sip_ws_connections 1" {
		t.Errorf("metric %q with the phone's connection open", got)
	}

	// Closing the tab drops the WebSocket without an unREGISTER.
	alice.Close()
	WaitFor(t, 10*time.Second, "the node to see the phone's connection closed", func() bool {
		return metric(t, n, "locsvc_sip_ws_connections") == "locsvc_sip_ws_connections 0"
	})
	stopSIPNode(t, n)
}

// contract reports, when a test fails, which expectation of the server
// it was checking: TestWebRTCFarm is written ahead of the server side,
// and its failures should say what the server does not do yet.
type contract struct {
	t    *testing.T
	step string
}

func newContract(t *testing.T) *contract {
	c := &contract{t: t}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("FAILED while checking: %s", c.step)
		}
	})
	return c
}

// expect names the next expectation (and logs it, so that a -v run reads
// as the contract).
func (c *contract) expect(s string) {
	c.t.Helper()
	c.step = s
	c.t.Logf("expect: %s", s)
}

// checkOutbound checks the 200 of a JsSIP REGISTER made through a proxy
// farm with --flow-timer flowTimer: an outbound registration (RFC 5626:
// Require: outbound, Flow-Timer) whose Contact, the phone's own (its
// instance and reg-id 1), carries its GRUUs (RFC 5627): pub-gruu is the
// AoR with gr=urn:uuid:INSTANCE, temp-gruu some other sip URI of the
// domain with a valueless gr. JsSIP must have taken both.
func checkOutbound(t *testing.T, who, aor string, reg Registration, flowTimer string) {
	t.Helper()
	res := reg.Response
	if res.StatusCode != 200 {
		t.Fatalf("%s: REGISTER answered %d %s", who, res.StatusCode, res.Reason)
	}
	if got := headerValues(res, "Require"); !slices.Contains(got, "outbound") {
		t.Errorf("%s: 200 Require %v, want outbound", who, got)
	}
	if got := headerValues(res, "Flow-Timer"); !slices.Equal(got, []string{flowTimer}) {
		t.Errorf("%s: 200 Flow-Timer %v, want %s", who, got, flowTimer)
	}
	var mine *sipuri.NameAddr
	for _, h := range res.GetHeaders("Contact") {
		nas, err := sipuri.ParseNameAddrs(h.Value())
		if err != nil {
			t.Fatalf("%s: 200 Contact %q: %v", who, h.Value(), err)
		}
		for i, na := range nas {
			inst, _ := na.Param("+sip.instance")
			regID, _ := na.Param("reg-id")
			if inst.Value == "<urn:uuid:"+reg.Instance+">" && regID.Value == "1" {
				mine = &nas[i]
			}
		}
	}
	if mine == nil {
		t.Fatalf("%s: the 200 has no Contact with the phone's +sip.instance and reg-id 1:\n%s", who, reg.Raw)
	}
	wantPub := aor + ";gr=urn:uuid:" + reg.Instance
	pub, ok := mine.Param("pub-gruu")
	if !ok || pub.Value != wantPub {
		t.Errorf("%s: 200 Contact pub-gruu %q (present %v), want %q (RFC 5627 §3.1)", who, pub.Value, ok, wantPub)
	}
	temp, ok := mine.Param("temp-gruu")
	if !ok {
		t.Errorf("%s: 200 Contact has no temp-gruu (RFC 5627 §3.2)", who)
	} else if u, err := sipuri.Parse(temp.Value); err != nil || u.Scheme != "sip" || u.Host != "localhost" || !hasURIParam(u, "gr", "") || temp.Value == pub.Value {
		t.Errorf("%s: 200 Contact temp-gruu %q (%v), want a sip URI of localhost with a valueless gr, not the pub-gruu", who, temp.Value, err)
	}
	if reg.PubGRUU != pub.Value || reg.TempGRUU != temp.Value {
		t.Errorf("%s: JsSIP took pub-gruu %q, temp-gruu %q from the 200", who, reg.PubGRUU, reg.TempGRUU)
	}
}

func hasURIParam(u sipuri.URI, name, value string) bool {
	for _, p := range u.Params {
		if p.Name == name && p.Value == value {
			return true
		}
	}
	return false
}

// sippFinal runs an INVITE scenario through target until it succeeds or
// deadline passes (each try waits up to 4 s), and returns the answer the
// caller got ("480 ..." or "430 ...").
func sippFinal(t *testing.T, scenario, target, user string, deadline time.Time) string {
	t.Helper()
	for {
		res := RunSipp(t, SippRun{Scenario: scenario, Target: target, Wait: 4 * time.Second,
			Keys: map[string]string{"domain": "localhost", "user": user}})
		if res.ExitCode == 0 {
			for _, l := range strings.Split(res.Messages, "\n") {
				if l = strings.TrimSpace(l); strings.HasPrefix(l, "SIP/2.0 4") {
					return strings.TrimPrefix(l, "SIP/2.0 ")
				}
			}
			return "?"
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s through %s: exit %d\nerrors:\n%s\nmessages:\n%s", scenario, target, res.ExitCode, res.Errors, res.Messages)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestWebRTCFarm is the target of SIP over WebSocket in proxy mode, with
// GRUUs (RFC 5627) and flow tokens (RFC 5626), for browser phones on a
// farm of two proxy nodes over two memcached shards:
//
//   - alice's tab registers over WSS with node A, bob's with node B; each
//     200 carries Require: outbound, Flow-Timer and the phone's GRUUs;
//   - bob calls alice: the INVITE crosses B, then A (alice's home, which
//     holds her flow), alice answers, media flows between the tabs, bob
//     hangs up and both calls end;
//   - a sipp caller on UDP calls alice through B; alice refuses with 486,
//     which reaches the caller;
//   - alice's tab closes: within the Flow-Timer, a call for her through B
//     and through A gets 480, or 430 (Flow Failed) from A, never a hang.
//
// It fails on a server without proxy-mode WebSocket, GRUUs or flow
// tokens; the log names the expectation it stopped at.
func TestWebRTCFarm(t *testing.T) {
	c := newContract(t)
	certs := testcerts.Generate(t)
	page := ServePhone(t, certs)
	browser := StartBrowser(t)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	flowKey := filepath.Join(t.TempDir(), "flow.key")
	if err := os.WriteFile(flowKey, key, 0o600); err != nil {
		t.Fatal(err)
	}
	const flowTimer = 10 * time.Second

	c.expect("proxy-mode nodes start with --sip-wss ADDR (the --tls-cert certificate), --flow-key FILE (32 random bytes, shared by the farm) and --flow-timer 10s")
	shards := []*Memcached{StartMemcached(t), StartMemcached(t)}
	common := []string{"--sip-mode", "proxy", "--domain", "localhost", "--replicas", "2", "--gossip-profile", "local",
		"--register-rate", "0", "--flow-key", flowKey, "--flow-timer", "10s"}
	wssA, wssB := FreeAddr(t), FreeAddr(t)
	a := StartNode(t, NodeOptions{ID: "nodeA", TLS: certs, Args: append([]string{"--memcached", shards[0].Addr, "--sip-wss", wssA}, common...)})
	b := StartNode(t, NodeOptions{ID: "nodeB", TLS: certs, Args: append([]string{"--memcached", shards[1].Addr, "--sip-wss", wssB, "--join", a.Gossip}, common...)})
	(&Cluster{t: t, Shards: shards, Nodes: []*Node{a, b}}).WaitMembers(2)

	c.expect("alice's REGISTER over WSS to node A: 200 with Require: outbound, Flow-Timer: 10, and a Contact (her +sip.instance, reg-id=1) with pub-gruu=\"sip:alice@localhost;gr=urn:uuid:INSTANCE\" and a temp-gruu")
	alice := browser.OpenPhone(t, "alice", page)
	regA := alice.Register("wss://"+wssA, "sip:alice@localhost", nil)
	checkJsSIPRegister(t, regA)
	t.Logf("alice's 200:\n%s", regA.Raw)
	checkOutbound(t, "alice", "sip:alice@localhost", regA, "10")

	c.expect("alice's binding, read through node B: one, transport wss, reg-id 1, her instance, homed on nodeA")
	WaitFor(t, 5*time.Second, "alice's binding through node B", func() bool { return len(b.Bindings(t, "sip:alice@localhost")) == 1 })
	if bs := b.Bindings(t, "sip:alice@localhost"); bs[0].Transport != "wss" || bs[0].RegId != 1 || bs[0].Instance != "<urn:uuid:"+regA.Instance+">" || bs[0].Node != "nodeA" {
		t.Errorf("alice's binding %v", bs[0])
	}

	c.expect("bob's REGISTER over WSS to node B: 200 with Require: outbound, Flow-Timer: 10 and his GRUUs")
	bob := browser.OpenPhone(t, "bob", page)
	regB := bob.Register("wss://"+wssB, "sip:bob@localhost", nil)
	checkOutbound(t, "bob", "sip:bob@localhost", regB, "10")

	c.expect("bob (WSS, node B) calls sip:alice@localhost: the INVITE reaches alice's tab over her flow at node A, having crossed B and A (three Vias)")
	out := bob.Call("sip:alice@localhost")
	in := alice.NextIncoming(10 * time.Second)
	t.Logf("the INVITE at alice:\n%s", in.Raw)
	if vias := len(in.Invite.GetHeaders("Via")); vias != 3 {
		t.Errorf("the INVITE at alice has %d Vias, want 3 (bob, node B, node A)", vias)
	}
	c.expect("alice answers: both phones see the call confirmed (200 back through A and B, ACK to alice's Contact, her pub-gruu) and media flows between the tabs (ICE on this machine)")
	alice.Answer(in.Call)
	bob.Await(out, "confirmed", 10*time.Second)
	alice.Await(in.Call, "confirmed", 10*time.Second)
	bob.Media(out, 10*time.Second)
	alice.Media(in.Call, 10*time.Second)
	c.expect("bob hangs up: his BYE (to alice's pub-gruu, along the dialog's route) reaches alice, both calls end")
	bob.Hangup(out)
	bob.Await(out, "ended", 10*time.Second)
	if e := alice.Await(in.Call, "ended", 10*time.Second); e.Originator != "remote" {
		t.Errorf("alice's call: %s, want ended by bob", e)
	}

	c.expect("a sipp caller on UDP calls sip:alice@localhost through node B: the INVITE reaches alice's tab; her 486 reaches the caller back through the farm")
	caller := GoSipp(t, SippRun{Scenario: "invite_486.xml", Target: b.SIP, Port: FreePort(t), Wait: 15 * time.Second,
		Keys: map[string]string{"domain": "localhost", "user": "alice"}})
	in = alice.NextIncoming(10 * time.Second)
	if got := in.Invite.From().Address.User; got != "caller" {
		t.Errorf("the call at alice is from %q, want sipp's caller", got)
	}
	alice.Reject(in.Call, 486)
	MustWait(t, "invite_486.xml", caller)

	c.expect("alice's tab closes (no unREGISTER): within the Flow-Timer (10 s) and a little, an INVITE for her through node B gets 480 (or 430)")
	alice.Close()
	deadline := time.Now().Add(flowTimer + 3*time.Second)
	t.Logf("through node B: %s", sippFinal(t, "invite_480_430.xml", b.SIP, "alice", deadline))
	c.expect("... and through node A, her home: 480, or 430 Flow Failed")
	t.Logf("through node A: %s", sippFinal(t, "invite_480_430.xml", a.SIP, "alice", deadline))

	c.expect("bob closes; both nodes still answer and stop cleanly (no panic, no data race)")
	bob.Close()
	stopSIPNode(t, b)
	stopSIPNode(t, a)
}

package integration

import (
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
	if got := bs[0]; got.Transport != "wss" || got.RegId != 1 || !strings.Contains(got.Instance, reg.Instance) || got.Node != "webrtc" {
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
	if err := n.Stop(10 * time.Second); err != nil {
		t.Fatalf("stop: %v\n%s", err, n.Output())
	}
	if out := n.Output(); !strings.Contains(out, "msg=stopped") || strings.Contains(out, "panic") || strings.Contains(out, "DATA RACE") {
		t.Errorf("node did not stop cleanly:\n%s", out)
	}
}

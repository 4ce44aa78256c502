package sipfront

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/sipuri"
)

// GRUUs (RFC 5627): what the 200 hands out, and where a request to one
// goes, in redirect mode (the 302 lists what a request reaches) and in
// proxy mode (the INVITE reaches one instance).

const (
	instance1 = "<urn:uuid:11111111-0000-1000-8000-000000000001>"
	instance2 = "<urn:uuid:22222222-0000-1000-8000-000000000002>"
)

// gruus returns the pub-gruu and temp-gruu of the 200's Contact for uri.
func gruus(t *testing.T, res *sip.Response, uri string) (pub, temp string) {
	t.Helper()
	for _, v := range values(res, "Contact") {
		elems, err := sipuri.ParseNameAddrs(v)
		if err != nil {
			t.Fatalf("Contact %q: %v", v, err)
		}
		for _, e := range elems {
			if e.URI != uri {
				continue
			}
			p, _ := e.Param("pub-gruu")
			tp, _ := e.Param("temp-gruu")
			return p.Value, tp.Value
		}
	}
	t.Fatalf("no Contact %s in %v", uri, values(res, "Contact"))
	return "", ""
}

// registerInstance registers contact for alice's instance over c.
func registerInstance(t *testing.T, c *udpClient, contact, instance, callID, cseq string, supported string) *sip.Response {
	t.Helper()
	hdrs := []string{"Contact: <" + contact + `>;+sip.instance="` + instance + `"`}
	if supported != "" {
		hdrs = append(hdrs, "Supported: "+supported)
	}
	res := c.do(msg{callID: callID, cseq: cseq + " REGISTER", hdrs: hdrs})
	wantCode(t, res, 200)
	return res
}

func TestGRUURedirect(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.Mode = ModeRedirect })
	c := e.udpClient()
	res := registerInstance(t, c, "sip:alice@192.0.2.1", instance1, "reg-1@test", "1", "gruu, path")
	pub1, temp1 := gruus(t, res, "sip:alice@192.0.2.1")
	if pub1 != "sip:alice@example.com;gr=urn:uuid:11111111-0000-1000-8000-000000000001" {
		t.Errorf("pub-gruu %q", pub1)
	}
	if !strings.HasPrefix(temp1, "sip:tgruu.") || !strings.HasSuffix(temp1, "@example.com;gr") || strings.Contains(temp1, "alice") {
		t.Errorf("temp-gruu %q", temp1)
	}
	res = registerInstance(t, c, "sip:alice@192.0.2.2", instance2, "reg-2@test", "1", "gruu")
	pub2, _ := gruus(t, res, "sip:alice@192.0.2.2")
	// Each registration gets a temp-gruu of its own.
	if _, again := gruus(t, res, "sip:alice@192.0.2.1"); again == temp1 || again == "" {
		t.Errorf("instance 1's temp-gruu in the second 200: %q (first %q)", again, temp1)
	}

	// Without Supported: gruu, no GRUU.
	res = registerInstance(t, c, "sip:alice@192.0.2.3", "<urn:uuid:33333333-0000-1000-8000-000000000003>", "reg-3@test", "1", "path")
	for _, v := range values(res, "Contact") {
		if strings.Contains(v, "gruu") {
			t.Errorf("GRUU handed to a UA that did not ask: %q", v)
		}
	}

	redirect := func(ruri string) *sip.Response {
		return c.do(msg{method: "INVITE", ruri: ruri, to: "<" + ruri + ">", callID: "call-" + ruri})
	}
	only := func(res *sip.Response, contact string) {
		t.Helper()
		wantCode(t, res, 302)
		if v := values(res, "Contact"); len(v) != 1 || !strings.Contains(v[0], contact) {
			t.Errorf("302 Contacts %q, want only %s", v, contact)
		}
	}
	only(redirect(pub1), "sip:alice@192.0.2.1")
	only(redirect(temp1), "sip:alice@192.0.2.1")
	only(redirect(pub2), "sip:alice@192.0.2.2")
	if v := values(redirect("sip:alice@example.com"), "Contact"); len(v) != 3 {
		t.Errorf("the AoR itself reaches %q, want all 3 contacts", v)
	}

	// A tampered temp-gruu names nothing.
	tok := strings.TrimPrefix(strings.TrimSuffix(temp1, "@example.com;gr"), "sip:")
	tampered := "sip:" + tok[:len(tok)-3] + "AAA@example.com;gr"
	wantCode(t, redirect(tampered), 404)
	// A pub-gruu of an instance not registered: the user is known.
	wantCode(t, redirect("sip:alice@example.com;gr=urn:uuid:99999999-0000-1000-8000-000000000009"), 480)
	wantCode(t, redirect("sip:nobody@example.com;gr=urn:uuid:99999999-0000-1000-8000-000000000009"), 404)

	// Instance 1 registers with a new Call-ID: its old temp-gruus end,
	// the new one works, and the pub-gruu is unchanged.
	res = registerInstance(t, c, "sip:alice@192.0.2.1", instance1, "reg-1-again@test", "1", "gruu")
	pubAgain, tempNew := gruus(t, res, "sip:alice@192.0.2.1")
	if pubAgain != pub1 {
		t.Errorf("pub-gruu changed: %q, was %q", pubAgain, pub1)
	}
	wantCode(t, redirect(temp1), 404)
	only(redirect(tempNew), "sip:alice@192.0.2.1")
}

// In proxy mode an INVITE to an instance's pub-gruu or temp-gruu reaches
// that instance only.
func TestGRUUProxy(t *testing.T) {
	e := startProxyEnv(t, nil)
	ua1, ua2 := e.udpClient(), e.udpClient()
	res := registerInstance(t, ua1, "sip:alice@"+ua1.local(), instance1, "p-reg-1@test", "1", "gruu")
	pub1, temp1 := gruus(t, res, "sip:alice@"+ua1.local())
	registerInstance(t, ua2, "sip:alice@"+ua2.local(), instance2, "p-reg-2@test", "1", "gruu")
	caller := e.udpClient()
	for i, ruri := range []string{pub1, temp1} {
		caller.sendRaw(msg{method: "INVITE", ruri: ruri, to: "<sip:alice@example.com>", callID: "gruu-call-" + string(rune('a'+i))}.text(caller.local(), "udp"))
		inv := ua1.recvRequest(3 * time.Second)
		if inv == nil || inv.Method != sip.INVITE {
			t.Fatalf("%s: instance 1 got %v", ruri, inv)
		}
		if other := ua2.recvRequest(300 * time.Millisecond); other != nil {
			t.Fatalf("%s: instance 2 got %s too", ruri, other.Method)
		}
		ua1.sendRaw(sip.NewResponseFromRequest(inv, 486, "Busy Here", nil).String())
		if res := caller.recvFinal(3 * time.Second); res == nil || res.StatusCode != 486 {
			t.Fatalf("%s: caller got %v", ruri, res)
		}
		ua1.recvRequest(time.Second) // the proxy's ACK
	}
}

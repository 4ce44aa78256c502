package sipfront

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/locsvc/locsvc/internal/sipuri"
)

func TestRedirect(t *testing.T) {
	e := startEnv(t, nil)
	c := e.udpClient()
	wantCode(t, c.do(msg{hdrs: []string{"Contact: <sip:alice@192.0.2.1>;q=0.5, <sip:alice@192.0.2.2;transport=tcp>",
		"Path: <sip:edge.example.net;lr>"}}), 200)
	// bob registered and unregistered: known, but not reachable now.
	wantCode(t, c.do(msg{to: "<sip:bob@example.com>", hdrs: []string{"Contact: <sip:bob@192.0.2.3>", "Expires: 0"}}), 200)
	// Redirect mode stores the REGISTER's Path only (no entry of its own).
	route := sipuri.PercentEncode("<sip:edge.example.net;lr>", sipuri.HeaderValueSafe)

	for _, method := range []string{"INVITE", "MESSAGE", "OPTIONS", "SUBSCRIBE"} {
		res := c.do(msg{method: method, ruri: "sip:alice@Example.COM:5060;user=phone", to: "<sip:alice@example.com>"})
		wantCode(t, res, 302)
		want := []string{
			"<sip:alice@192.0.2.2;transport=tcp?Route=" + route + ">;q=1",
			"<sip:alice@192.0.2.1?Route=" + route + ">;q=0.5",
		}
		if got := values(res, "Contact"); !slices.Equal(got, want) {
			t.Errorf("%s: Contact %q, want %q", method, got, want)
		}
		if res.Reason != "Moved Temporarily" {
			t.Errorf("reason %q", res.Reason)
		}
	}

	tests := []struct {
		name string
		m    msg
		code int
		why  string
	}{
		{"unknown user", msg{method: "INVITE", ruri: "sip:nobody@example.com"}, 404, "Not Found"},
		{"user whose bindings were removed", msg{method: "INVITE", ruri: "sip:bob@example.com"}, 480, "Temporarily Unavailable"},
		{"foreign domain", msg{method: "INVITE", ruri: "sip:alice@other.org"}, 404, "Domain Not Served"},
		{"no user", msg{method: "MESSAGE", ruri: "sip:example.com"}, 404, "Not Found"},
		{"in dialog", msg{method: "BYE", ruri: "sip:alice@example.com", to: "<sip:alice@example.com>;tag=t1"}, 481, "Does Not Exist"},
		{"options to the server", msg{method: "OPTIONS", ruri: "sip:example.com"}, 200, "OK"},
		{"options with Max-Forwards 0", msg{method: "OPTIONS", ruri: "sip:alice@example.com", maxFwd: "0"}, 200, "OK"},
		{"invite with Max-Forwards 0", msg{method: "INVITE", ruri: "sip:alice@example.com", maxFwd: "0"}, 483, "Too Many Hops"},
		{"cancel of nothing", msg{method: "CANCEL", ruri: "sip:alice@example.com"}, 481, "Does Not Exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.do(tt.m)
			wantCode(t, res, tt.code)
			if !strings.Contains(res.Reason, tt.why) {
				t.Errorf("reason %q", res.Reason)
			}
			if tt.code == 200 && !strings.Contains(strings.Join(values(res, "Allow"), ","), "INVITE") {
				t.Errorf("Allow %q", values(res, "Allow"))
			}
		})
	}

	// CANCEL of an answered INVITE: 200; the ACK to the 302 is absorbed.
	via := "SIP/2.0/UDP " + c.local() + ";branch=z9hG4bK-cancel-me"
	wantCode(t, c.do(msg{method: "INVITE", ruri: "sip:alice@example.com", via: via, callID: "inv"}), 302)
	wantCode(t, c.do(msg{method: "CANCEL", ruri: "sip:alice@example.com", via: via, callID: "inv", cseq: "1 CANCEL"}), 200)
	c.sendRaw(msg{method: "ACK", ruri: "sip:alice@example.com", via: via, callID: "inv", cseq: "1 ACK"}.text(c.local(), "udp"))
	if res := c.recv(300 * time.Millisecond); res != nil {
		t.Errorf("ACK answered: %v", res)
	}

	// A retransmitted INVITE gets the same To tag, statelessly.
	text := msg{method: "INVITE", ruri: "sip:alice@example.com"}.text(c.local(), "udp")
	c.sendRaw(text)
	a := c.recv(3 * time.Second)
	c.sendRaw(text)
	b := c.recv(3 * time.Second)
	ta, _ := a.To().Params.Get("tag")
	tb, _ := b.To().Params.Get("tag")
	if ta == "" || ta != tb {
		t.Errorf("To tags %q and %q", ta, tb)
	}
}

func TestRegistrarMode(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.Mode = ModeRegistrar })
	c := e.udpClient()
	wantCode(t, c.do(msg{hdrs: []string{"Contact: <sip:alice@192.0.2.1>"}}), 200)
	for _, method := range []string{"INVITE", "MESSAGE", "SUBSCRIBE"} {
		res := c.do(msg{method: method, ruri: "sip:alice@example.com"})
		wantCode(t, res, 405)
		if got := values(res, "Allow"); !slices.Equal(got, []string{"REGISTER, OPTIONS"}) {
			t.Errorf("Allow %q", got)
		}
	}
	res := c.do(msg{method: "OPTIONS", ruri: "sip:alice@example.com"})
	wantCode(t, res, 200)
	if got := values(res, "Allow"); !slices.Equal(got, []string{"REGISTER, OPTIONS"}) {
		t.Errorf("Allow %q", got)
	}
}

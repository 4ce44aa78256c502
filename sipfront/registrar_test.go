package sipfront

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/locsvc/locsvc/locsvc"
)

func TestRegisterAddQueryRefreshRemove(t *testing.T) {
	e := startEnv(t, nil)
	c := e.udpClient()

	res := c.do(msg{hdrs: []string{"Contact: <sip:alice@192.0.2.1:5060>", "Expires: 600", "User-Agent: phone/1"}})
	wantCode(t, res, 200)
	if got := values(res, "Contact"); !slices.Equal(got, []string{"<sip:alice@192.0.2.1:5060>;expires=600"}) {
		t.Errorf("200 Contact = %q", got)
	}
	if d := values(res, "Date"); len(d) != 1 || !strings.HasSuffix(d[0], " GMT") {
		t.Errorf("Date = %q", d)
	}
	if p := values(res, "Path"); len(p) != 0 {
		t.Errorf("Path echoed to a UA that did not ask for it: %q", p)
	}
	if tag, _ := res.To().Params.Get("tag"); tag == "" {
		t.Error("no To tag")
	}
	bs := e.live("sip:alice@example.com")
	if len(bs) != 1 {
		t.Fatalf("stored %d bindings", len(bs))
	}
	b := bs[0]
	if b.URI != "sip:alice@192.0.2.1:5060" || b.CallID != "call-1@test" || b.CSeq != 1 || b.Transport != "udp" ||
		b.Received != c.local() || b.UserAgent != "phone/1" || len(b.Path) != 0 || b.Node != "n1" {
		t.Errorf("stored %+v", b)
	}

	// A query: no Contact.
	res = c.do(msg{cseq: "2 REGISTER"})
	wantCode(t, res, 200)
	if got := values(res, "Contact"); len(got) != 1 || !strings.HasPrefix(got[0], "<sip:alice@192.0.2.1:5060>;expires=") {
		t.Errorf("query Contact = %q", got)
	}

	// A refresh with a second contact, q and per-contact expires.
	res = c.do(msg{cseq: "3 REGISTER", hdrs: []string{
		"Contact: <sip:alice@192.0.2.1:5060>;expires=900, \"Desk\" <sip:alice@192.0.2.2:5070;transport=tcp>;q=0.5",
		"Expires: 300",
	}})
	wantCode(t, res, 200)
	got := values(res, "Contact")
	want := []string{"<sip:alice@192.0.2.1:5060>;expires=900", "<sip:alice@192.0.2.2:5070;transport=tcp>;expires=300;q=0.5"}
	if !slices.Equal(got, want) {
		t.Errorf("refresh Contact = %q, want %q", got, want)
	}

	// Remove one.
	res = c.do(msg{cseq: "4 REGISTER", hdrs: []string{"Contact: <sip:alice@192.0.2.2:5070;transport=tcp>;expires=0"}})
	wantCode(t, res, 200)
	if got := values(res, "Contact"); len(got) != 1 {
		t.Errorf("after removal Contact = %q", got)
	}
	if n := len(e.live("sip:alice@example.com")); n != 1 {
		t.Errorf("stored %d bindings after removal", n)
	}

	// Remove all.
	res = c.do(msg{cseq: "5 REGISTER", hdrs: []string{"Contact: *", "Expires: 0"}})
	wantCode(t, res, 200)
	if got := values(res, "Contact"); len(got) != 0 {
		t.Errorf("after wildcard Contact = %q", got)
	}
	if n := len(e.live("sip:alice@example.com")); n != 0 {
		t.Errorf("stored %d bindings after wildcard", n)
	}
}

func TestRegisterErrors(t *testing.T) {
	e := startEnv(t, nil)
	c := e.udpClient()
	wantCode(t, c.do(msg{hdrs: []string{"Contact: <sip:alice@192.0.2.1>"}}), 200)

	tests := []struct {
		name   string
		m      msg
		code   int
		reason string // regexp
	}{
		{"interval too brief", msg{cseq: "10 REGISTER", hdrs: []string{"Contact: <sip:alice@192.0.2.1>;expires=10"}}, 423, "^Interval Too Brief$"},
		{"out of order", msg{cseq: "1 REGISTER", hdrs: []string{"Contact: <sip:alice@192.0.2.1>"}}, 500, "CSEQ 1 is not higher"},
		{"too many contacts", msg{cseq: "11 REGISTER", hdrs: []string{
			"Contact: <sip:a@192.0.2.2>, <sip:a@192.0.2.3>", "Contact: <sip:a@192.0.2.4>"}}, 403, "^Too Many Contacts$"},
		{"wildcard with others", msg{cseq: "12 REGISTER", hdrs: []string{"Contact: *, <sip:a@192.0.2.2>", "Expires: 0"}}, 400, "must be the only contact"},
		{"wildcard without expires 0", msg{cseq: "13 REGISTER", hdrs: []string{"Contact: *"}}, 400, "requires Expires: 0"},
		{"q out of range", msg{cseq: "14 REGISTER", hdrs: []string{"Contact: <sip:a@192.0.2.2>;q=1.5"}}, 400, "q: 1.5 is outside"},
		{"tel contact", msg{cseq: "15 REGISTER", hdrs: []string{"Contact: <tel:+15551234>"}}, 400, "contacts\\[0\\].uri"},
		{"malformed contact", msg{cseq: "16 REGISTER", hdrs: []string{"Contact: <sip:a@192.0.2.2"}}, 400, "Malformed Contact Header: missing '>'"},
		{"malformed expires param", msg{cseq: "17 REGISTER", hdrs: []string{"Contact: <sip:a@192.0.2.2>;expires=soon"}}, 400, "Malformed Contact Header: expires"},
		{"malformed Expires", msg{cseq: "18 REGISTER", hdrs: []string{"Contact: <sip:a@192.0.2.2>", "Expires: never"}}, 400, "Malformed Expires Header"},
		{"foreign domain", msg{ruri: "sip:other.org", cseq: "19 REGISTER"}, 404, "^Domain Not Served$"},
		{"foreign AoR", msg{to: "<sip:alice@other.org>", cseq: "20 REGISTER"}, 404, "^AoR Not In Served Domain$"},
		{"To without user", msg{to: "<sip:example.com>", cseq: "21 REGISTER"}, 400, "To URI Has No User Part"},
		{"required extension", msg{cseq: "22 REGISTER", hdrs: []string{"Require: path, 100rel"}}, 420, "^Bad Extension$"},
		{"malformed Path", msg{cseq: "23 REGISTER", hdrs: []string{"Contact: <sip:a@192.0.2.2>", "Path: <sip:p1;lr"}}, 400, "Malformed Path Header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.do(tt.m)
			wantCode(t, res, tt.code)
			if !regexp.MustCompile(tt.reason).MatchString(res.Reason) {
				t.Errorf("reason %q does not match %q", res.Reason, tt.reason)
			}
			switch tt.code {
			case 423:
				if got := values(res, "Min-Expires"); !slices.Equal(got, []string{"60"}) {
					t.Errorf("Min-Expires = %q", got)
				}
			case 420:
				if got := values(res, "Unsupported"); !slices.Equal(got, []string{"100rel"}) {
					t.Errorf("Unsupported = %q", got)
				}
			}
		})
	}
	// Nothing a refused request asked for was stored.
	bs := e.live("sip:alice@example.com")
	if len(bs) != 1 || bs[0].URI != "sip:alice@192.0.2.1" || bs[0].CSeq != 1 {
		t.Errorf("bindings changed by refused requests: %+v", bs)
	}
}

func TestRegisterToOwnAddressAndPortlessAoR(t *testing.T) {
	e := startEnv(t, nil)
	c := e.udpClient()
	res := c.do(msg{ruri: "sip:" + e.srv.Addr(), to: "<sip:bob@EXAMPLE.com:5060>", hdrs: []string{"Contact: <sip:bob@192.0.2.9>"}})
	wantCode(t, res, 200)
	if n := len(e.live("sip:bob@example.com")); n != 1 {
		t.Errorf("sip:bob@example.com has %d bindings", n)
	}
}

func TestRegisterPathAndOutbound(t *testing.T) {
	e := startEnv(t, nil)
	c := e.udpClient()
	// Redirect mode (the default) stores exactly the REGISTER's Path: only
	// proxy mode adds the node's own entry.

	res := c.do(msg{hdrs: []string{"Contact: <sip:alice@192.0.2.1>", "Path: <sip:edge1.example.net;lr>", "Supported: path"}})
	wantCode(t, res, 200)
	if got, want := values(res, "Path"), []string{"<sip:edge1.example.net;lr>"}; !slices.Equal(got, want) {
		t.Errorf("Path echoed %q, want %q", got, want)
	}
	if b := e.live("sip:alice@example.com"); !slices.Equal(b[0].Path, []string{"sip:edge1.example.net;lr"}) {
		t.Errorf("stored Path %q", b[0].Path)
	}

	// Without Supported: path, stored but not echoed.
	res = c.do(msg{to: "<sip:carol@example.com>", callID: "c2", hdrs: []string{"Contact: <sip:carol@192.0.2.1>", "Path: <sip:edge1.example.net;lr>"}})
	wantCode(t, res, 200)
	if got := values(res, "Path"); len(got) != 0 {
		t.Errorf("Path echoed without Supported: path: %q", got)
	}
	if b := e.live("sip:carol@example.com"); len(b[0].Path) != 1 {
		t.Errorf("stored Path %q", b[0].Path)
	}

	// Outbound: instance and reg-id with Supported: outbound.
	inst := `"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"`
	res = c.do(msg{to: "<sip:dave@example.com>", callID: "c3", hdrs: []string{
		"Contact: <sip:dave@192.0.2.1;ob>;+sip.instance=" + inst + ";reg-id=1", "Supported: outbound, path"}})
	wantCode(t, res, 200)
	if got := values(res, "Require"); !slices.Equal(got, []string{"outbound"}) {
		t.Errorf("Require = %q", got)
	}
	if got := values(res, "Contact"); len(got) != 1 || !strings.Contains(got[0], ";+sip.instance="+inst+";reg-id=1") {
		t.Errorf("Contact = %q", got)
	}
	if got := values(res, "Path"); len(got) != 0 {
		t.Errorf("Path = %q", got)
	}
	b := e.live("sip:dave@example.com")
	if b[0].RegID != 1 || b[0].Instance == "" || len(b[0].Path) != 0 {
		t.Errorf("stored %+v", b[0])
	}

	// reg-id without Supported: outbound is ignored (RFC 5626 §6).
	res = c.do(msg{to: "<sip:erin@example.com>", callID: "c4", hdrs: []string{
		"Contact: <sip:erin@192.0.2.1>;+sip.instance=" + inst + ";reg-id=1"}})
	wantCode(t, res, 200)
	if len(values(res, "Require")) != 0 {
		t.Error("Require: outbound without Supported: outbound")
	}
	if b := e.live("sip:erin@example.com"); b[0].RegID != 0 || len(b[0].Path) != 0 {
		t.Errorf("stored %+v", b[0])
	}
}

func TestRegisterOverTCP(t *testing.T) {
	e := startEnv(t, nil)
	c := e.tcpClient()
	res := c.do(msg{hdrs: []string{"Contact: <sip:alice@192.0.2.1;transport=tcp>"}})
	wantCode(t, res, 200)
	b := e.live("sip:alice@example.com")
	if len(b) != 1 || b[0].Transport != "tcp" || b[0].Received != c.local() {
		t.Fatalf("stored %+v", b)
	}
	// Pipelined requests on one connection are all answered.
	c.sendRaw(msg{cseq: "2 REGISTER"}.text(c.local(), "tcp") + msg{cseq: "3 REGISTER"}.text(c.local(), "tcp"))
	for range 2 {
		if res := c.recv(3 * time.Second); res == nil || res.StatusCode != 200 {
			t.Fatalf("pipelined answer: %v", res)
		}
	}
	// CRLF keep-alive gets a pong (RFC 5626 §3.5.1).
	c.sendRaw("\r\n\r\n")
	c.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	pong := make([]byte, 2)
	if _, err := c.r.Read(pong); err != nil || string(pong) != "\r\n" {
		t.Errorf("pong = %q, %v", pong, err)
	}
}

// fakeLocator answers with what the test sets, counting calls.
type fakeLocator struct {
	calls  atomic.Int32
	err    error
	result locsvc.Result
	block  chan struct{} // if not nil, Register waits for it
}

func (f *fakeLocator) Register(ctx context.Context, req locsvc.Request) (locsvc.Result, error) {
	f.calls.Add(1)
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return locsvc.Result{}, ctx.Err()
		}
	}
	return f.result, f.err
}

func (f *fakeLocator) Lookup(ctx context.Context, aor string) (locsvc.Result, error) {
	f.calls.Add(1)
	return f.result, f.err
}

func TestLocatorErrorMapping(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		code   int
		reason string
		header string
	}{
		{"invalid", &locsvc.Error{Kind: locsvc.KindInvalid, Field: "contacts[0].uri", Reason: "bad"}, 400, "contacts[0].uri: bad", ""},
		{"too brief", &locsvc.Error{Kind: locsvc.KindIntervalTooBrief, Reason: "x", MinExpires: 120}, 423, "Interval Too Brief", "Min-Expires"},
		{"too many", &locsvc.Error{Kind: locsvc.KindTooManyContacts, Reason: "x"}, 403, "Too Many Contacts", ""},
		{"out of order", &locsvc.Error{Kind: locsvc.KindOutOfOrder, Field: "cseq", Reason: "old"}, 500, "cseq: old", ""},
		{"unavailable", locsvc.Unavailable(errors.New("down")), 503, "Location Service Unavailable", "Retry-After"},
		{"wrapped", errors.Join(errors.New("ctx"), &locsvc.Error{Kind: locsvc.KindTooManyContacts}), 403, "Too Many Contacts", ""},
		{"other", errors.New("boom"), 500, "Server Internal Error", ""},
		{"deadline", context.DeadlineExceeded, 500, "Server Internal Error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeLocator{err: tt.err}
			e := startEnvWith(t, f, nil, nil)
			c := e.udpClient()
			res := c.do(msg{hdrs: []string{"Contact: <sip:alice@192.0.2.1>"}})
			wantCode(t, res, tt.code)
			if res.Reason != tt.reason {
				t.Errorf("reason %q, want %q", res.Reason, tt.reason)
			}
			if tt.header != "" && len(values(res, tt.header)) != 1 {
				t.Errorf("no %s header:\n%s", tt.header, res)
			}
			if tt.code == 423 && values(res, "Min-Expires")[0] != "120" {
				t.Errorf("Min-Expires %q", values(res, "Min-Expires"))
			}
			// Lookups map the same way.
			res = c.do(msg{method: "INVITE", ruri: "sip:alice@example.com"})
			wantCode(t, res, tt.code)
		})
	}
}

func TestRetransmissionGetsSameAnswer(t *testing.T) {
	e := startEnv(t, nil)
	c := e.udpClient()
	text := msg{hdrs: []string{"Contact: <sip:alice@192.0.2.1>"}}.text(c.local(), "udp")
	c.sendRaw(text)
	first := c.recv(3 * time.Second)
	wantCode(t, first, 200)
	c.sendRaw(text)
	second := c.recv(3 * time.Second)
	if second == nil || second.String() != first.String() {
		t.Fatalf("retransmission answered differently:\n%v\n----\n%v", first, second)
	}
	if st := e.srv.Stats(); st.Retransmissions != 1 || st.Responses[200] != 2 || st.Requests["REGISTER"] != 2 {
		t.Errorf("stats %+v", st)
	}
	// Stored once: a second run would have failed the CSeq check.
	if b := e.live("sip:alice@example.com"); len(b) != 1 {
		t.Errorf("bindings %+v", b)
	}
	// Same Call-ID and CSeq in a new transaction (new branch): refused.
	res := c.do(msg{hdrs: []string{"Contact: <sip:alice@192.0.2.1>"}})
	wantCode(t, res, 500)
}

func TestRetransmissionWhileHandledIsAbsorbed(t *testing.T) {
	f := &fakeLocator{block: make(chan struct{}), result: locsvc.Result{AoR: "sip:alice@example.com"}}
	e := startEnvWith(t, f, nil, nil)
	c := e.udpClient()
	text := msg{hdrs: []string{"Contact: <sip:alice@192.0.2.1>"}}.text(c.local(), "udp")
	c.sendRaw(text)
	c.sendRaw(text)
	if res := c.recv(300 * time.Millisecond); res != nil {
		t.Fatalf("answered before the Locator returned: %v", res)
	}
	close(f.block)
	wantCode(t, c.recv(3*time.Second), 200)
	if res := c.recv(300 * time.Millisecond); res != nil {
		t.Errorf("second answer: %v", res)
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("Locator called %d times", n)
	}
}

func TestMalformedInput(t *testing.T) {
	e := startEnv(t, nil)
	c := e.udpClient()
	tests := []struct {
		name   string
		text   func(local string) string
		code   int // 0: no answer
		reason string
	}{
		{"missing Call-ID", func(l string) string { return msg{callID: "-"}.text(l, "udp") }, 400, "Missing Call-ID Header"},
		{"missing From", func(l string) string { return msg{from: "-"}.text(l, "udp") }, 400, "Missing From Header"},
		{"missing To", func(l string) string { return msg{to: "-"}.text(l, "udp") }, 400, "Missing To Header"},
		{"missing CSeq", func(l string) string { return msg{cseq: "-"}.text(l, "udp") }, 400, "Missing CSEQ Header"},
		{"CSeq method mismatch", func(l string) string { return msg{cseq: "1 INVITE"}.text(l, "udp") }, 400, "CSEQ Method Does Not Match"},
		{"malformed CSeq", func(l string) string { return msg{cseq: "one REGISTER"}.text(l, "udp") }, 400, "Malformed CSEQ Header"},
		{"malformed Max-Forwards", func(l string) string { return msg{maxFwd: "lots"}.text(l, "udp") }, 400, "Malformed Max-Forwards Header"},
		{"malformed From", func(l string) string { return msg{from: "<sip:alice@example.com"}.text(l, "udp") }, 400, "Malformed From Header"},
		{"Max-Forwards 0", func(l string) string { return msg{maxFwd: "0"}.text(l, "udp") }, 483, "Too Many Hops"},
		{"short body", func(l string) string {
			return strings.Replace(msg{}.text(l, "udp"), "Content-Length: 0", "Content-Length: 50", 1)
		}, 400, "Body Shorter Than Content-Length"},
		{"bad version", func(l string) string {
			return strings.Replace(msg{}.text(l, "udp"), "SIP/2.0\r\n", "SIP/3.0\r\n", 1)
		}, 505, "Version Not Supported"},
		{"tel Request-URI", func(l string) string { return msg{ruri: "tel:+1555"}.text(l, "udp") }, 416, "Unsupported URI Scheme"},
		{"no Via", func(l string) string { return msg{via: "-"}.text(l, "udp") }, 0, ""},
		{"malformed Via", func(l string) string { return msg{via: "garbage"}.text(l, "udp") }, 0, ""},
		{"not SIP", func(string) string { return "GET / HTTP/1.1\r\nHost: x\r\n\r\n" }, 0, ""},
		{"binary", func(string) string { return "\x00\x01\x02\xff\xfe" }, 0, ""},
		{"a response", func(l string) string {
			return "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP " + l + ";branch=z9hG4bKx\r\nContent-Length: 0\r\n\r\n"
		}, 0, ""},
		{"ACK", func(l string) string { return msg{method: "ACK"}.text(l, "udp") }, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.sendRaw(tt.text(c.local()))
			wait := 3 * time.Second
			if tt.code == 0 {
				wait = 300 * time.Millisecond
			}
			res := c.recv(wait)
			switch {
			case tt.code == 0 && res != nil:
				t.Fatalf("answered %d %s", res.StatusCode, res.Reason)
			case tt.code == 0:
			case res == nil:
				t.Fatal("no answer")
			default:
				wantCode(t, res, tt.code)
				if !strings.Contains(res.Reason, tt.reason) {
					t.Errorf("reason %q does not name %q", res.Reason, tt.reason)
				}
			}
			// The server keeps serving.
			wantCode(t, c.do(msg{method: "OPTIONS", ruri: "sip:example.com"}), 200)
		})
	}
	if st := e.srv.Stats(); st.Panics != 0 || st.ParseErrors == 0 || st.Dropped == 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestMalformedOverTCPClosesAfter400(t *testing.T) {
	e := startEnv(t, nil)
	c := e.tcpClient()
	// No Content-Length on a stream: the end of the message is unknown.
	c.sendRaw("REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/TCP " + c.local() + ";branch=z9hG4bKa\r\n" +
		"From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\n\r\n")
	res := c.recv(3 * time.Second)
	if res == nil {
		t.Fatal("no answer")
	}
	wantCode(t, res, 400)
	if res := c.recv(time.Second); res != nil {
		t.Errorf("more after the 400: %v", res)
	}
	// A new connection is served.
	wantCode(t, e.tcpClient().do(msg{method: "OPTIONS"}), 200)
}

func TestResponseAddressing(t *testing.T) {
	e := startEnv(t, nil)
	c := e.udpClient()
	// rport: the answer goes to the source port whatever sent-by says.
	res := c.do(msg{method: "OPTIONS", via: "SIP/2.0/UDP 198.51.100.7:5999;rport;branch=" + newBranch()})
	wantCode(t, res, 200)
	via := res.Via()
	host, port, _ := strings.Cut(c.local(), ":")
	if r, _ := via.Params.Get("received"); r != host {
		t.Errorf("received=%q", r)
	}
	if r, _ := via.Params.Get("rport"); r != port {
		t.Errorf("rport=%q", r)
	}
	// Without rport the sent-by port is used: claim our own port.
	res = c.do(msg{method: "OPTIONS", via: "SIP/2.0/UDP client.invalid:" + port + ";branch=" + newBranch()})
	if r, _ := res.Via().Params.Get("received"); r != host {
		t.Errorf("received=%q for a host name sent-by", r)
	}
	// Sent-by pointing elsewhere: no answer reaches us.
	c.sendRaw(msg{method: "OPTIONS", via: "SIP/2.0/UDP 127.0.0.1:9;branch=" + newBranch()}.text(c.local(), "udp"))
	if res := c.recv(300 * time.Millisecond); res != nil {
		t.Errorf("answer went to the source, not sent-by: %v", res)
	}
}

func TestCloseDrainsAndIsIdempotent(t *testing.T) {
	f := &fakeLocator{block: make(chan struct{}), result: locsvc.Result{AoR: "sip:alice@example.com"}}
	e := startEnvWith(t, f, nil, nil)
	c := e.udpClient()
	c.sendRaw(msg{hdrs: []string{"Contact: <sip:alice@192.0.2.1>"}}.text(c.local(), "udp"))
	for f.calls.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	closed := make(chan error)
	go func() { closed <- e.srv.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned with a request in hand")
	case <-time.After(200 * time.Millisecond):
	}
	close(f.block)
	wantCode(t, c.recv(3*time.Second), 200) // answered during the drain
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNewChecksConfig(t *testing.T) {
	loc := &fakeLocator{}
	creds, _ := ParseCredentials(strings.NewReader("alice:example.com:" + strings.Repeat("a", 32) + "\n"))
	tests := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"proxy", Config{Addr: "127.0.0.1:0", Mode: "proxy", Domains: []string{"a"}}, ""},
		{"bad mode", Config{Addr: "127.0.0.1:0", Mode: "b2bua", Domains: []string{"a"}}, "mode"},
		{"no domain", Config{Addr: "127.0.0.1:0"}, "at least one domain"},
		{"open non-loopback", Config{Addr: "192.0.2.1:5060", Advertise: "192.0.2.1:5060", Domains: []string{"a"}}, "refusing to serve SIP"},
		{"wildcard needs advertise", Config{Addr: "0.0.0.0:5060", Domains: []string{"a"}, AllowOpen: true}, "set Advertise"},
		{"short nonce key", Config{Addr: "127.0.0.1:0", Domains: []string{"a"}, NonceKey: []byte("short")}, "nonce key"},
		{"open loopback", Config{Addr: "127.0.0.1:0", Domains: []string{"a"}}, ""},
		{"open localhost", Config{Addr: "localhost:0", Domains: []string{"a"}}, ""},
		{"allow open", Config{Addr: "192.0.2.1:5060", Domains: []string{"a"}, AllowOpen: true}, ""},
		{"with credentials", Config{Addr: "192.0.2.1:5060", Domains: []string{"a"}, Credentials: creds}, ""},
		{"empty credentials are no auth", Config{Addr: "192.0.2.1:5060", Domains: []string{"a"}, Credentials: &CredentialFile{}}, "refusing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Logger = quietLogger()
			_, err := New(loc, tt.cfg)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("New: %v, want an error containing %q", err, tt.err)
			}
		})
	}
}

// The response a panicking handler leaves behind is a 500, and the server
// goes on.
func TestHandlerPanicIsRecovered(t *testing.T) {
	e := startEnvWith(t, panicLocator{}, nil, nil)
	c := e.udpClient()
	wantCode(t, c.do(msg{hdrs: []string{"Contact: <sip:alice@192.0.2.1>"}}), 500)
	wantCode(t, c.do(msg{method: "OPTIONS"}), 200)
	if n := e.srv.Stats().Panics; n != 1 {
		t.Errorf("panics = %d", n)
	}
}

type panicLocator struct{}

func (panicLocator) Register(context.Context, locsvc.Request) (locsvc.Result, error) { panic("boom") }
func (panicLocator) Lookup(context.Context, string) (locsvc.Result, error)           { panic("boom") }

var _ = sip.REGISTER

// An outbound registration's 200 carries Flow-Timer when one is set
// (RFC 5626 §4.4.1), in whole seconds; other registrations never do.
func TestFlowTimer(t *testing.T) {
	inst := `"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"`
	outbound := msg{to: "<sip:dave@example.com>", callID: "ft1", hdrs: []string{
		"Contact: <sip:dave@192.0.2.1;ob>;+sip.instance=" + inst + ";reg-id=1", "Supported: outbound"}}
	plain := msg{to: "<sip:erin@example.com>", callID: "ft2", hdrs: []string{"Contact: <sip:erin@192.0.2.1>"}}

	e := startEnv(t, func(c *Config) { c.FlowTimer = 120 * time.Second })
	c := e.udpClient()
	res := c.do(outbound)
	wantCode(t, res, 200)
	if got := values(res, "Flow-Timer"); !slices.Equal(got, []string{"120"}) {
		t.Errorf("Flow-Timer = %q, want 120", got)
	}
	res = c.do(plain)
	wantCode(t, res, 200)
	if got := values(res, "Flow-Timer"); len(got) != 0 {
		t.Errorf("Flow-Timer %q on a registration without outbound", got)
	}

	e = startEnv(t, nil)
	res = e.udpClient().do(outbound)
	wantCode(t, res, 200)
	if got := values(res, "Flow-Timer"); len(got) != 0 {
		t.Errorf("Flow-Timer %q with none configured", got)
	}
}

package sipfront

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/locsvc/locsvc/locsvc"
)

// registerMsg is a REGISTER for user with a contact of its own and a
// CSeq of its own, so that each is a new, valid request.
func registerMsg(user string, cseq int) msg {
	return msg{
		from: "<sip:" + user + "@example.com>;tag=f1", to: "<sip:" + user + "@example.com>",
		callID: "rate-" + user + "@test", cseq: strconv.Itoa(cseq) + " REGISTER",
		hdrs: []string{"Contact: <sip:" + user + "@192.0.2.1>"},
	}
}

func TestRegisterRateLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		proxy bool
	}{{"redirect", false}, {"proxy", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEnv(t, func(c *Config) {
				c.RegisterRate, c.RegisterBurst = 0.5, 3
				if tc.proxy {
					c.Mode = ModeProxy
				}
			})
			c := e.udpClient()
			for i := range 3 {
				wantCode(t, c.do(registerMsg(fmt.Sprintf("u%d", i), 1)), 200)
			}
			over := registerMsg("flood", 1).text(c.local(), "udp")
			c.sendRaw(over)
			res := c.recv(3 * time.Second)
			if res == nil {
				t.Fatal("no answer over the limit")
			}
			wantCode(t, res, 503)
			if !strings.Contains(res.Reason, "REGISTER Rate Limit") {
				t.Errorf("reason %q does not name the limit", res.Reason)
			}
			// 1 token at 0.5/s: 2 s, give or take the time the test took.
			if ra := values(res, "Retry-After"); len(ra) != 1 || (ra[0] != "1" && ra[0] != "2") {
				t.Errorf("Retry-After %q, want 1 or 2", ra)
			}
			// A retransmission gets the same 503 and is not counted again.
			c.sendRaw(over)
			if again := c.recv(3 * time.Second); again == nil || again.StatusCode != 503 {
				t.Fatalf("retransmission answered %v", again)
			}
			if got := e.srv.Stats().Limited[LimitRegisterRate]; got != 1 {
				t.Errorf("register_rate counted %d, want 1", got)
			}
			if b := e.live("sip:flood@example.com"); len(b) != 0 {
				t.Errorf("refused REGISTER stored %+v", b)
			}
			// Other requests are not limited.
			wantCode(t, c.do(msg{method: "OPTIONS", ruri: "sip:example.com"}), 200)
		})
	}
}

func TestRegisterRateLimitExemptsTrusted(t *testing.T) {
	e := startEnv(t, func(c *Config) {
		c.RegisterRate, c.RegisterBurst = 1, 1
		c.Trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	c := e.udpClient()
	for i := range 20 {
		wantCode(t, c.do(registerMsg(fmt.Sprintf("t%d", i), 1)), 200)
	}
	if got := e.srv.Stats().Limited[LimitRegisterRate]; got != 0 {
		t.Errorf("register_rate counted %d for a trusted source", got)
	}
}

// oversized is a REGISTER of about size bytes: the padding is a body, or
// (header) one long header.
func oversized(local, tp string, size int, header bool) string {
	m := registerMsg("big", 1)
	if header {
		m.hdrs = append(m.hdrs, "X-Padding: "+strings.Repeat("a", size))
	} else {
		m.hdrs = append(m.hdrs, "Content-Type: text/plain")
		m.body = strings.Repeat("a", size)
	}
	return m.text(local, tp)
}

func TestMessageSizeLimitUDP(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.MaxMessageSize = 2048 })
	c := e.udpClient()
	for i, header := range []bool{false, true} {
		c.sendRaw(oversized(c.local(), "udp", 4000, header))
		res := c.recv(3 * time.Second)
		if res == nil {
			t.Fatalf("no answer to an oversized datagram (header padding %v)", header)
		}
		wantCode(t, res, 513)
		if res.CallID() == nil || res.CallID().Value() != "rate-big@test" {
			t.Errorf("513 not matched to the request: %v", res)
		}
		if got := e.srv.Stats().Limited[LimitMessageSize]; got != uint64(i+1) {
			t.Errorf("message_size counted %d, want %d", got, i+1)
		}
	}
	// Nothing was stored, and the server keeps serving; a message just
	// under the bound passes.
	if b := e.live("sip:big@example.com"); len(b) != 0 {
		t.Errorf("oversized REGISTER stored %+v", b)
	}
	wantCode(t, c.do(registerMsg("small", 1)), 200)
	// Garbage over the bound has no header to answer: dropped, counted.
	c.sendRaw(strings.Repeat("x", 3000))
	if res := c.recv(300 * time.Millisecond); res != nil {
		t.Errorf("garbage answered %v", res)
	}
	if st := e.srv.Stats(); st.Limited[LimitMessageSize] != 3 || st.ParseErrors != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestMessageSizeLimitTCP(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.MaxMessageSize = 2048 })
	for i, tc := range []struct {
		name   string
		header bool
		size   int
	}{
		{"body over the bound", false, 40000},
		{"header over the bound", true, 4000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.tcpClient()
			go c.conn.Write([]byte(oversized(c.local(), "tcp", tc.size, tc.header)))
			res := c.recv(3 * time.Second)
			if res == nil {
				t.Fatal("no answer")
			}
			wantCode(t, res, 513)
			// The stream cannot go on: the server hangs up.
			if res := c.recv(3 * time.Second); res != nil {
				t.Errorf("more after the 513: %v", res)
			}
			if got := e.srv.Stats().Limited[LimitMessageSize]; got != uint64(i+1) {
				t.Errorf("message_size counted %d, want %d", got, i+1)
			}
			wantCode(t, e.tcpClient().do(registerMsg(fmt.Sprintf("tcp%d", i), 1)), 200)
		})
	}
	// The refused connections close (after their drain); the two still
	// open are the clients that registered.
	deadline := time.Now().Add(5 * time.Second)
	for e.srv.Stats().TCPConns > 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if st := e.srv.Stats(); st.TCPConns != 2 || st.Panics != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestLocationLimitsCounted(t *testing.T) {
	e := startEnv(t, nil) // testLimits: 3 contacts per AoR
	c := e.udpClient()
	m := registerMsg("many", 1)
	m.hdrs = []string{"Contact: <sip:a@192.0.2.1>, <sip:b@192.0.2.1>, <sip:c@192.0.2.1>, <sip:d@192.0.2.1>"}
	wantCode(t, c.do(m), 403)
	m = registerMsg("long", 1)
	m.hdrs = []string{"Contact: <sip:" + strings.Repeat("a", 600) + "@192.0.2.1>"}
	wantCode(t, c.do(m), 400)
	m = registerMsg("agent", 1)
	m.hdrs = append(m.hdrs, "User-Agent: "+strings.Repeat("u", 300))
	wantCode(t, c.do(m), 400)
	st := e.srv.Stats()
	want := map[string]uint64{LimitContacts: 1, LimitURILength: 1, LimitFieldLength: 1, LimitRegisterRate: 0,
		LimitMessageSize: 0, LimitPathEntries: 0}
	for k, v := range want {
		if st.Limited[k] != v {
			t.Errorf("Limited[%s] = %d, want %d (all: %v)", k, st.Limited[k], v, st.Limited)
		}
	}
	if len(st.Limited) != len(want) {
		t.Errorf("Limited has %v, want every limit named", st.Limited)
	}
}

func TestLocatorLimitNames(t *testing.T) {
	lim := locsvc.DefaultLimits()
	long := "sip:" + strings.Repeat("a", lim.MaxURILen) + "@example.com"
	tests := []struct {
		name string
		req  locsvc.Request
		want string
	}{
		{"aor", locsvc.Request{AoR: long}, LimitURILength},
		{"contact", locsvc.Request{AoR: "sip:a@example.com", CallID: "c", Contacts: []locsvc.Contact{{URI: long}}}, LimitURILength},
		{"path entry", locsvc.Request{AoR: "sip:a@example.com", Path: []string{long}}, LimitURILength},
		{"path entries", locsvc.Request{AoR: "sip:a@example.com", Path: make([]string, lim.MaxPath+1)}, LimitPathEntries},
		{"call-id", locsvc.Request{AoR: "sip:a@example.com", CallID: strings.Repeat("c", lim.MaxFieldLen+1)}, LimitFieldLength},
		{"contacts", locsvc.Request{AoR: "sip:a@example.com", CallID: "c", Contacts: make([]locsvc.Contact, lim.MaxContacts+1)}, LimitContacts},
		{"not a limit", locsvc.Request{AoR: "sip:a b@example.com"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := locsvc.Check(tt.req, lim)
			e, ok := locsvc.AsError(err)
			if !ok {
				t.Fatalf("Check: %v", err)
			}
			if e.Limit != tt.want {
				t.Errorf("Check(%s): Limit = %q, want %q", tt.name, e.Limit, tt.want)
			}
		})
	}
}

func TestNewChecksLimits(t *testing.T) {
	for _, mutate := range []func(*Config){
		func(c *Config) { c.MaxMessageSize = 100 },
		func(c *Config) { c.MaxMessageSize = 70000 },
		func(c *Config) { c.RegisterRate = -1 },
		func(c *Config) { c.RegisterBurst = -1 },
	} {
		cfg := Config{Addr: "127.0.0.1:0", Domains: []string{"example.com"}, Logger: quietLogger()}
		mutate(&cfg)
		if _, err := New(&fakeLocator{}, cfg); err == nil {
			t.Errorf("New accepted %+v", cfg)
		}
	}
}

// Messages larger than one read of a connection (a large body, a large
// header), trickled in pieces and followed by a small one in the same
// stream, are each answered: what is kept of a message that spans reads
// does not lose the stream's place.
func TestTCPMessagesAcrossReads(t *testing.T) {
	e := startEnv(t, nil)
	c := e.tcpClient()
	body := registerMsg("bigbody", 1)
	body.hdrs = append(body.hdrs, "Content-Type: text/plain")
	body.body = strings.Repeat("b", 3*tcpReadBuffer)
	head := registerMsg("bighead", 1)
	head.hdrs = append(head.hdrs, "X-Padding: "+strings.Repeat("h", 2*tcpReadBuffer))
	stream := body.text(c.local(), "tcp") + head.text(c.local(), "tcp") + registerMsg("small", 1).text(c.local(), "tcp")
	go func() {
		for i := 0; i < len(stream); i += 1000 {
			c.conn.Write([]byte(stream[i:min(i+1000, len(stream))]))
			time.Sleep(time.Millisecond)
		}
	}()
	// Handlers answer in any order.
	answered := map[string]bool{}
	for range 3 {
		res := c.recv(3 * time.Second)
		if res == nil {
			t.Fatalf("answers for %v only", answered)
		}
		wantCode(t, res, 200)
		answered[res.To().Address.User] = true
	}
	for _, user := range []string{"bigbody", "bighead", "small"} {
		if !answered[user] {
			t.Errorf("no answer for %s (answered %v)", user, answered)
		}
	}
}

// A header over the bound that arrives in many reads still gets its 513:
// the parser keeps nothing of a message it refuses before the header is
// whole, the connection keeps its start.
func TestTCPOversizedHeaderTrickled(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.MaxMessageSize = 8192 })
	c := e.tcpClient()
	stream := oversized(c.local(), "tcp", 20000, true)
	go func() {
		for i := 0; i < len(stream); i += 500 {
			if _, err := c.conn.Write([]byte(stream[i:min(i+500, len(stream))])); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	res := c.recv(3 * time.Second)
	if res == nil {
		t.Fatal("no answer")
	}
	wantCode(t, res, 513)
}

package sipfront

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/locsvc/locsvc/locsvc"
)

// recorder is a sink that keeps what the server sends.
type recorder struct {
	mu  sync.Mutex
	out [][]byte
}

func (r *recorder) name() string { return "udp" }

func (r *recorder) send(b []byte, _ netip.AddrPort) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.out = append(r.out, bytes.Clone(b))
	return nil
}

// fakeConn is a net.Conn whose writes are kept and whose reads never come.
type fakeConn struct {
	net.Conn
	rec *recorder
}

func (f fakeConn) Write(b []byte) (int, error)      { f.rec.send(b, netip.AddrPort{}); return len(b), nil }
func (f fakeConn) SetWriteDeadline(time.Time) error { return nil }

// fuzzServer is a server's stateless front end that handles requests on
// the caller's goroutine, as if listening on 127.0.0.1:5060.
func fuzzServer(t testing.TB, mutate func(*Config)) *stateless {
	store := locsvc.NewMemStore(nil, 0)
	t.Cleanup(func() { store.Close() })
	lim := locsvc.DefaultLimits()
	lim.MinExpires = time.Second
	svc, err := locsvc.NewService(store, lim, "fuzz")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Addr: "127.0.0.1:5060", Domains: []string{"example.com"}, Logger: quietLogger()}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(svc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fe := s.front.(*stateless)
	fe.inline = true
	s.core.SetAddr("127.0.0.1:5060")
	return fe
}

func fuzzSeeds() []string {
	local := "192.0.2.10:5062"
	auth := authorization("alice", "alice-pw", "example.com", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "sip:example.com", "REGISTER", SHA256)
	return []string{
		msg{hdrs: []string{"Contact: <sip:alice@192.0.2.10:5062>;expires=60", "User-Agent: seed"}}.text(local, "udp"),
		msg{cseq: "2 REGISTER", hdrs: []string{`Contact: "A" <sip:alice@192.0.2.10:5062;transport=tcp>;q=0.5, <sip:alice@192.0.2.11>;expires=0`,
			"Expires: 120", "Supported: path, outbound", "Path: <sip:edge;lr>, <sip:edge2;lr>"}}.text(local, "udp"),
		msg{cseq: "3 REGISTER", hdrs: []string{`Contact: <sip:alice@192.0.2.10;ob>;+sip.instance="<urn:uuid:1>";reg-id=1`, "Supported: outbound"}}.text(local, "tcp"),
		msg{cseq: "4 REGISTER", hdrs: []string{"Contact: *", "Expires: 0"}}.text(local, "udp"),
		msg{cseq: "5 REGISTER", hdrs: []string{"Contact: <sip:alice@192.0.2.10>", auth}}.text(local, "udp"),
		msg{cseq: "6 REGISTER", hdrs: []string{"m: <sip:alice@192.0.2.10>", "k: path", "Require: gruu"}}.text(local, "udp"),
		msg{method: "INVITE", ruri: "sip:alice@example.com", body: "v=0\r\n"}.text(local, "udp"),
		msg{method: "OPTIONS", ruri: "sip:example.com", via: "SIP/2.0/UDP " + local + ";rport;branch=z9hG4bK1"}.text(local, "udp"),
		msg{method: "CANCEL", ruri: "sip:alice@example.com", cseq: "1 CANCEL"}.text(local, "udp"),
		"REGISTER sip:example.com SIP/2.0\r\nv: SIP/2.0/UDP 1.2.3.4\r\nf: <sip:a@example.com>;tag=1\r\nt: sip:a@example.com\r\ni: x\r\nCSeq: 1 REGISTER\r\nl: 0\r\n\r\n",
		"\r\n\r\n",
		"SIP/2.0 200 OK\r\n\r\n",
	}
}

// FuzzHandle drives raw bytes through parsing, request checks and the
// registrar and redirect paths (over the datagram and the stream parser),
// with and without digest auth. Nothing may panic, and whatever is sent
// must parse as a SIP response.
func FuzzHandle(f *testing.F) {
	for i, s := range fuzzSeeds() {
		f.Add([]byte(s), uint16(len(s)/2), i%2 == 0)
	}
	open := fuzzServer(f, nil)
	md5ha1, _ := HA1("alice", "example.com", "alice-pw", MD5)
	shaha1, _ := HA1("alice", "example.com", "alice-pw", SHA256)
	creds, _ := ParseCredentials(strings.NewReader("alice:example.com:" + md5ha1 + "\nalice:example.com:" + shaha1))
	authed := fuzzServer(f, func(c *Config) { c.Credentials = creds; c.AuthAll = true; c.Mode = ModeRedirect })
	// shedding refuses every new REGISTER and INVITE: each waited an hour.
	shedding := fuzzServer(f, func(c *Config) {
		c.Overload = Overload{Target: time.Millisecond, Interval: time.Millisecond, RetryAfterMin: 1, RetryAfterMax: 4}
	})
	longAgo := time.Now().Add(-time.Hour)
	src := netip.MustParseAddrPort("192.0.2.10:5062")

	f.Fuzz(func(t *testing.T, data []byte, split uint16, useAuth bool) {
		s := open
		if useAuth {
			s = authed
		}
		rec := &recorder{}
		s.receiveDatagram(data, src, time.Time{}, rec)
		shedding.receiveDatagram(data, src, longAgo, rec)

		tc := &tcpConn{t: &tcpTransport{fe: s}, conn: fakeConn{rec: rec}}
		ps := s.parser.NewSIPStream()
		defer ps.Close()
		cut := int(split) % (len(data) + 1)
		if tc.feed(ps, data[:cut], src) {
			tc.feed(ps, data[cut:], src)
		}

		if n := s.core.Stats.Panics.Load() + shedding.core.Stats.Panics.Load(); n != 0 {
			t.Fatalf("%d panics recovered", n)
		}
		for _, out := range rec.out {
			if string(out) == "\r\n" {
				continue // keep-alive pong
			}
			m, err := sip.ParseMessage(out)
			if err != nil {
				t.Fatalf("sent something unparseable (%v):\n%q", err, out)
			}
			res, ok := m.(*sip.Response)
			if !ok || res.StatusCode < 200 || res.StatusCode > 699 {
				t.Fatalf("sent a non-final or non-response:\n%q", out)
			}
		}
	})
}

// wsRecorder is a recorder that names itself as a WebSocket connection
// does, so that requests take the ws path (no UDP destination).
type wsRecorder struct{ *recorder }

func (wsRecorder) name() string { return "ws" }

// FuzzWSMessage feeds raw bytes as one WebSocket message through the path
// a ws connection's reader takes. Nothing may panic, every message must be
// released exactly once, and whatever is sent must be a CRLF pong or
// parse as a final SIP response.
func FuzzWSMessage(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(strings.ReplaceAll(s, "SIP/2.0/UDP", "SIP/2.0/WS")))
	}
	f.Add([]byte("\r\n\r\n"))
	f.Add([]byte(""))
	s := fuzzServer(f, func(c *Config) { c.Mode = ModeRedirect })
	src := netip.MustParseAddrPort("127.0.0.1:40000")

	f.Fuzz(func(t *testing.T, data []byte) {
		rec := &recorder{}
		released := 0
		s.receiveWSMessage(data, src, wsRecorder{rec}, func() { released++ })
		if released != 1 {
			t.Fatalf("released %d times", released)
		}
		if n := s.core.Stats.Panics.Load(); n != 0 {
			t.Fatalf("%d panics recovered", n)
		}
		for _, out := range rec.out {
			if string(out) == "\r\n" {
				continue
			}
			m, err := sip.ParseMessage(out)
			if err != nil {
				t.Fatalf("sent something unparseable (%v):\n%q", err, out)
			}
			if res, ok := m.(*sip.Response); !ok || res.StatusCode < 200 || res.StatusCode > 699 {
				t.Fatalf("sent a non-final or non-response:\n%q", out)
			}
		}
	})
}

package core

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/locsvc/locsvc/locsvc"
)

type nopLocator struct{}

func (nopLocator) Register(context.Context, locsvc.Request) (locsvc.Result, error) {
	return locsvc.Result{}, errors.New("not here")
}

func (nopLocator) Lookup(context.Context, string) (locsvc.Result, error) {
	return locsvc.Result{}, errors.New("not here")
}

func testCore() *Core {
	return New(nopLocator{}, Config{Mode: ModeRedirect, Domains: []string{"example.com"}, Realm: "example.com",
		NonceKey: []byte("0123456789abcdef"), RequestTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

func testRequest(t *testing.T) *sip.Request {
	t.Helper()
	msg, err := NewParser().ParseSIP([]byte("OPTIONS sip:example.com SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1\r\nFrom: <sip:a@example.com>;tag=1\r\n" +
		"To: <sip:a@example.com>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	return msg.(*sip.Request)
}

// The deadline counts from arrival: a request that waited for a handler
// has that much less time left.
func TestContextDeadlineFromArrival(t *testing.T) {
	c := testCore()
	arrived := time.Now().Add(-2 * time.Second)
	ctx, cancel := c.Context(&Inbound{Arrived: arrived})
	defer cancel()
	dl, ok := ctx.Deadline()
	if !ok || !dl.Equal(arrived.Add(5*time.Second)) {
		t.Errorf("deadline %v (%v), want arrival + 5 s = %v", dl, ok, arrived.Add(5*time.Second))
	}
	ctx, cancel = c.Context(&Inbound{Arrived: time.Now().Add(-6 * time.Second)})
	defer cancel()
	if ctx.Err() == nil {
		t.Error("a request older than RequestTimeout still has time left")
	}
}

// Recover counts a panic, answers it 500 once through answer, and lets
// nothing escape: not the panic, not one while answering.
func TestRecover(t *testing.T) {
	c := testCore()
	req := testRequest(t)
	var got []int
	func() {
		defer c.Recover("in a test", req, func(res *sip.Response) { got = append(got, res.StatusCode) })
		panic("boom")
	}()
	if len(got) != 1 || got[0] != 500 {
		t.Errorf("answers %v, want one 500", got)
	}
	func() {
		defer c.Recover("in a test", req, func(*sip.Response) { panic("while answering") })
		panic("boom")
	}()
	func() {
		defer c.Recover("in a test", nil, nil)
		panic("boom")
	}()
	func() {
		defer c.Recover("in a test", req, func(*sip.Response) { t.Error("answered without a panic") })
	}()
	if n := c.Stats.Panics.Load(); n != 3 {
		t.Errorf("%d panics counted, want 3", n)
	}
}

// Quick answers an OPTIONS for the server itself; Serve takes the rest.
func TestQuickAndServe(t *testing.T) {
	c := testCore()
	c.SetAddr("127.0.0.1:5060")
	req := testRequest(t)
	in := &Inbound{Req: req, Transport: "udp", Arrived: time.Now()}
	if res := c.Check(in); res != nil {
		t.Fatalf("Check: %d", res.StatusCode)
	}
	if res := c.Quick(in); res == nil || res.StatusCode != 200 {
		t.Fatalf("Quick(OPTIONS for the server) = %v", res)
	}
	req.Recipient.User = "alice"
	if res := c.Quick(in); res != nil {
		t.Fatalf("Quick(OPTIONS for a user) = %d, want it left to Serve", res.StatusCode)
	}
	ctx, cancel := c.Context(in)
	defer cancel()
	if res := c.Serve(ctx, in); res.StatusCode != 500 {
		t.Errorf("Serve with a failing Locator = %d, want 500", res.StatusCode)
	}
}

// Which contacts are reached on the flow they registered over rather
// than at their URI.
func TestNeedsFlow(t *testing.T) {
	src := netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		name      string
		ct        locsvc.Contact
		transport string
		want      bool
	}{
		{"UDP from the contact's IP", locsvc.Contact{URI: "sip:a@192.0.2.1:5070"}, "udp", false},
		{"UDP from the contact's IP, another port", locsvc.Contact{URI: "sip:a@192.0.2.1:5070"}, "udp", false},
		{"UDP behind NAT", locsvc.Contact{URI: "sip:a@10.1.1.1:5070"}, "udp", true},
		{"UDP, v4-mapped source", locsvc.Contact{URI: "sip:a@[::ffff:192.0.2.1]"}, "udp", false},
		{"UDP, a host name", locsvc.Contact{URI: "sip:a@phone.example.com"}, "udp", false},
		{"UDP outbound flow", locsvc.Contact{URI: "sip:a@192.0.2.1", RegID: 1}, "udp", true},
		{"TCP", locsvc.Contact{URI: "sip:a@192.0.2.1;transport=tcp"}, "tcp", true},
		{"WebSocket", locsvc.Contact{URI: "sip:a@df7jal23ls0d.invalid;transport=ws"}, "ws", true},
		{"unparseable", locsvc.Contact{URI: "sip:"}, "udp", true},
	} {
		if got := NeedsFlow(tc.ct, tc.transport, src); got != tc.want {
			t.Errorf("%s: NeedsFlow = %v, want %v", tc.name, got, tc.want)
		}
	}
}

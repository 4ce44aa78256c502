package sipfront

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/locsvc/locsvc/locsvc"
)

// env is a started server on loopback over an in-process location service.
type env struct {
	t     testing.TB
	srv   *Server
	svc   *locsvc.Service
	store *locsvc.MemStore
}

func testLimits() locsvc.Limits {
	lim := locsvc.DefaultLimits()
	lim.MaxContacts = 3
	return lim
}

func startEnv(t testing.TB, mutate func(*Config)) *env {
	t.Helper()
	store := locsvc.NewMemStore(nil, 0)
	t.Cleanup(func() { store.Close() })
	svc, err := locsvc.NewService(store, testLimits(), "n1")
	if err != nil {
		t.Fatal(err)
	}
	return startEnvWith(t, svc, store, mutate)
}

func startEnvWith(t testing.TB, loc Locator, store *locsvc.MemStore, mutate func(*Config)) *env {
	t.Helper()
	cfg := Config{Addr: "127.0.0.1:0", Domains: []string{"example.com"}, Logger: quietLogger()}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(loc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	svc, _ := loc.(*locsvc.Service)
	return &env{t: t, srv: srv, svc: svc, store: store}
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

var branchSeq atomic.Uint64

func newBranch() string { return fmt.Sprintf("z9hG4bK-test-%d", branchSeq.Add(1)) }

// msg is a request to send; empty fields take defaults, "-" omits the
// header.
type msg struct {
	method, ruri                string
	via, from, to, callID, cseq string
	maxFwd                      string
	hdrs                        []string
	body                        string
}

// text renders m for a client at local (host:port) over transport tp.
func (m msg) text(local, tp string) string {
	if m.method == "" {
		m.method = "REGISTER"
	}
	if m.ruri == "" {
		m.ruri = "sip:example.com"
	}
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", m.method, m.ruri)
	hdr := func(name, v string) {
		if v != "-" {
			fmt.Fprintf(&b, "%s: %s\r\n", name, v)
		}
	}
	hdr("Via", def(m.via, fmt.Sprintf("SIP/2.0/%s %s;branch=%s", strings.ToUpper(tp), local, newBranch())))
	hdr("Max-Forwards", def(m.maxFwd, "70"))
	hdr("From", def(m.from, "<sip:alice@example.com>;tag=f1"))
	hdr("To", def(m.to, "<sip:alice@example.com>"))
	hdr("Call-ID", def(m.callID, "call-1@test"))
	hdr("CSeq", def(m.cseq, "1 "+m.method))
	for _, h := range m.hdrs {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(m.body), m.body)
	return b.String()
}

// udpClient is a UA on a UDP socket of its own.
type udpClient struct {
	t    testing.TB
	conn *net.UDPConn
	srv  *net.UDPAddr
}

func (e *env) udpClient() *udpClient {
	e.t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	srv, err := net.ResolveUDPAddr("udp", e.srv.Addr())
	if err != nil {
		e.t.Fatal(err)
	}
	return &udpClient{t: e.t, conn: conn, srv: srv}
}

func (c *udpClient) local() string { return c.conn.LocalAddr().String() }

func (c *udpClient) sendRaw(text string) {
	c.t.Helper()
	if _, err := c.conn.WriteToUDP([]byte(text), c.srv); err != nil {
		c.t.Fatal(err)
	}
}

// recv reads one response, or nil when none comes within d.
func (c *udpClient) recv(d time.Duration) *sip.Response {
	c.t.Helper()
	buf := make([]byte, 65535)
	c.conn.SetReadDeadline(time.Now().Add(d))
	n, err := c.conn.Read(buf)
	if err != nil {
		return nil
	}
	m, err := sip.ParseMessage(buf[:n])
	if err != nil {
		c.t.Fatalf("unparseable answer: %v\n%s", err, buf[:n])
	}
	res, ok := m.(*sip.Response)
	if !ok {
		c.t.Fatalf("answer is not a response:\n%s", buf[:n])
	}
	return res
}

// do sends m and returns the response.
func (c *udpClient) do(m msg) *sip.Response {
	c.t.Helper()
	c.sendRaw(m.text(c.local(), "udp"))
	res := c.recv(3 * time.Second)
	if res == nil {
		c.t.Fatalf("no answer to %s", m.method)
	}
	return res
}

// tcpClient is a UA on one TCP (or TLS) connection.
type tcpClient struct {
	t         testing.TB
	conn      net.Conn
	r         *bufio.Reader
	transport string // for the Via: "tcp" or "tls"
}

func (e *env) tcpClient() *tcpClient {
	e.t.Helper()
	conn, err := net.Dial("tcp", e.srv.Addr())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return &tcpClient{t: e.t, conn: conn, r: bufio.NewReader(conn), transport: "tcp"}
}

func (c *tcpClient) local() string { return c.conn.LocalAddr().String() }

func (c *tcpClient) sendRaw(text string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(text)); err != nil {
		c.t.Fatal(err)
	}
}

// recv reads one response off the stream, or nil on timeout or EOF.
func (c *tcpClient) recv(d time.Duration) *sip.Response {
	c.t.Helper()
	m := c.recvMsg(d)
	if m == nil {
		return nil
	}
	res, ok := m.(*sip.Response)
	if !ok {
		c.t.Fatalf("got a request where a response was due:\n%s", m)
	}
	return res
}

func (c *tcpClient) do(m msg) *sip.Response {
	c.t.Helper()
	c.sendRaw(m.text(c.local(), c.transport))
	res := c.recv(3 * time.Second)
	if res == nil {
		c.t.Fatalf("no answer to %s over %s", m.method, c.transport)
	}
	return res
}

// values returns every value of a response header.
func values(res *sip.Response, name string) []string {
	var out []string
	for _, h := range res.GetHeaders(name) {
		out = append(out, h.Value())
	}
	return out
}

func wantCode(t testing.TB, res *sip.Response, code int) {
	t.Helper()
	if res.StatusCode != code {
		t.Fatalf("got %d %q, want %d\n%s", res.StatusCode, res.Reason, code, res)
	}
}

// live returns the AoR's bindings as stored.
func (e *env) live(aor string) []locsvc.Binding {
	e.t.Helper()
	res, err := e.svc.Lookup(context.Background(), aor)
	if err != nil {
		e.t.Fatal(err)
	}
	return res.Bindings
}

package sipfront

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/locsvc/locsvc/internal/testcerts"
)

// tlsClient is a UA on a TLS connection of its own: the TCP client's
// framing on a tls.Conn.
func (e *env) tlsClient(certs *testcerts.Certs) *tcpClient {
	e.t.Helper()
	conn, err := tls.Dial("tcp", e.srv.TLSAddr(), certs.ClientTLS(e.t, false))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return &tcpClient{t: e.t, conn: conn, r: bufio.NewReader(conn), transport: "tls"}
}

func TestSIPOverTLS(t *testing.T) {
	certs := testcerts.Generate(t)
	for _, mode := range []string{ModeRegistrar, ModeRedirect, ModeProxy} {
		t.Run(mode, func(t *testing.T) {
			e := startEnv(t, func(c *Config) {
				c.Mode = mode
				c.TLSAddr = "127.0.0.1:0"
				c.TLSConfig = certs.ServerTLS(t)
			})
			if e.srv.TLSAddr() == "" || e.srv.TLSAddr() == e.srv.Addr() {
				t.Fatalf("TLS address %q (plain %q)", e.srv.TLSAddr(), e.srv.Addr())
			}
			c := e.tlsClient(certs)
			res := c.do(msg{hdrs: []string{"Contact: <sip:alice@192.0.2.1;transport=tls>"}})
			wantCode(t, res, 200)
			if via := res.Via(); via == nil || via.Transport != "TLS" {
				t.Errorf("answer's Via %v", via)
			}
			b := e.live("sip:alice@example.com")
			if len(b) != 1 || b[0].Transport != "tls" || b[0].Received != c.local() {
				t.Fatalf("stored %+v", b)
			}
			// The same connection carries the next request.
			wantCode(t, c.do(msg{method: "OPTIONS", cseq: "2 OPTIONS"}), 200)

			// Plaintext on the TLS port is no handshake: nothing answers,
			// and the listener goes on.
			raw, err := net.Dial("tcp", e.srv.TLSAddr())
			if err != nil {
				t.Fatal(err)
			}
			raw.Write([]byte(msg{method: "OPTIONS"}.text(raw.LocalAddr().String(), "tcp")))
			raw.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 512)
			if n, _ := raw.Read(buf); n > 0 && string(buf[:7]) == "SIP/2.0" {
				t.Errorf("plaintext SIP answered on the TLS port: %q", buf[:n])
			}
			raw.Close()
			wantCode(t, e.tlsClient(certs).do(msg{method: "OPTIONS"}), 200)
		})
	}
}

func TestSIPOverTLSMalformed(t *testing.T) {
	certs := testcerts.Generate(t)
	e := startEnv(t, func(c *Config) {
		c.Mode = ModeRegistrar
		c.TLSAddr = "127.0.0.1:0"
		c.TLSConfig = certs.ServerTLS(t)
	})
	c := e.tlsClient(certs)
	c.sendRaw("REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/TLS " + c.local() + ";branch=z9hG4bKa\r\n" +
		"From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\n\r\n")
	res := c.recv(3 * time.Second)
	if res == nil {
		t.Fatal("no answer")
	}
	wantCode(t, res, 400)
	wantCode(t, e.tlsClient(certs).do(msg{method: "OPTIONS"}), 200)
}

func TestTLSConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no certificate": {Addr: "127.0.0.1:0", Domains: []string{"x"}, TLSAddr: "127.0.0.1:0", TLSConfig: &tls.Config{}},
		"no config":      {Addr: "127.0.0.1:0", Domains: []string{"x"}, TLSAddr: "127.0.0.1:0"},
		"bad address":    {Addr: "127.0.0.1:0", Domains: []string{"x"}, TLSAddr: "nonsense", TLSConfig: &tls.Config{Certificates: make([]tls.Certificate, 1)}},
		"open, public":   {Addr: "127.0.0.1:0", Domains: []string{"x"}, TLSAddr: "192.0.2.1:5061", TLSConfig: &tls.Config{Certificates: make([]tls.Certificate, 1)}},
	} {
		cfg.Logger = quietLogger()
		if _, err := New(&fakeLocator{}, cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// recvMsg reads one message, request or response, off a stream client.
func (c *tcpClient) recvMsg(d time.Duration) sip.Message {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(d))
	var head strings.Builder
	length := 0
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return nil
		}
		if head.Len() == 0 && line == "\r\n" {
			continue // a keep-alive pong
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
		if name, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(name), "Content-Length") {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return nil
	}
	m, err := sip.ParseMessage([]byte(head.String() + string(body)))
	if err != nil {
		c.t.Fatalf("unparseable message: %v\n%s", err, head.String())
	}
	return m
}

// Proxy mode calls a UA that registered over TLS on its connection: the
// INVITE goes down the TLS connection the REGISTER came on, record-routed
// for both transports, and the callee's answer comes back to the caller.
func TestProxyCallsTLSBinding(t *testing.T) {
	certs := testcerts.Generate(t)
	e := startProxyEnv(t, func(c *Config) {
		c.TLSAddr = "127.0.0.1:0"
		c.TLSConfig = certs.ServerTLS(t)
	})
	callee := e.tlsClient(certs)
	// The contact names an address nobody listens at: only the connection
	// reaches the callee.
	wantCode(t, callee.do(msg{from: "<sip:bob@example.com>;tag=r", to: "<sip:bob@example.com>",
		hdrs: []string{"Contact: <sip:bob@192.0.2.9:5061;transport=tls>"}}), 200)

	caller := e.udpClient()
	caller.sendRaw(msg{method: "INVITE", ruri: "sip:bob@example.com", to: "<sip:bob@example.com>", callID: "inv-tls@test"}.text(caller.local(), "udp"))
	m := callee.recvMsg(5 * time.Second)
	inv, ok := m.(*sip.Request)
	if !ok || inv.Method != sip.INVITE {
		t.Fatalf("callee got %v, want the INVITE", m)
	}
	if via := inv.Via(); via == nil || via.Transport != "TLS" {
		t.Errorf("proxy's Via %v", via)
	}
	rr := inv.GetHeaders("Record-Route")
	if len(rr) != 2 || !strings.Contains(rr[0].Value(), "transport=tls") || strings.Contains(rr[1].Value(), "transport=") {
		t.Errorf("Record-Route %v, want a TLS one above a UDP one", rr)
	}
	callee.sendRaw(sip.NewResponseFromRequest(inv, 486, "Busy Here", nil).String())
	if res := caller.recvFinal(3 * time.Second); res == nil || res.StatusCode != 486 {
		t.Fatalf("caller got %v", res)
	}
}

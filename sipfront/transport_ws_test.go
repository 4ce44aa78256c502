package sipfront

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/testcerts"
)

// wsHost is the made-up sent-by host RFC 7118's examples use: a browser
// knows no address of its own to put there.
const wsHost = "df7jal23ls0d.invalid"

// wsClient is a UA on one WebSocket connection.
type wsClient struct {
	t         testing.TB
	c         *websocket.Conn
	transport string // "ws" or "wss", for the Via
}

// wsDial upgrades to url with opts (nil: the "sip" subprotocol only).
func wsDial(t testing.TB, url string, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	if opts == nil {
		opts = &websocket.DialOptions{Subprotocols: []string{"sip"}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, res, err := websocket.Dial(ctx, url, opts)
	if err == nil {
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, res, err
}

func (e *env) wsClient() *wsClient {
	e.t.Helper()
	c, _, err := wsDial(e.t, "ws://"+e.srv.WSAddr(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if c.Subprotocol() != "sip" {
		e.t.Fatalf("subprotocol %q chosen", c.Subprotocol())
	}
	return &wsClient{t: e.t, c: c, transport: "ws"}
}

func (e *env) wssClient(certs *testcerts.Certs) *wsClient {
	e.t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: certs.ClientTLS(e.t, false)}}
	c, _, err := wsDial(e.t, "wss://"+e.srv.WSSAddr(), &websocket.DialOptions{Subprotocols: []string{"sip"}, HTTPClient: hc})
	if err != nil {
		e.t.Fatal(err)
	}
	return &wsClient{t: e.t, c: c, transport: "wss"}
}

func (c *wsClient) write(typ websocket.MessageType, text string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.c.Write(ctx, typ, []byte(text)); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next message, or the error that ended the reading.
func (c *wsClient) read() (websocket.MessageType, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return c.c.Read(ctx)
}

func (c *wsClient) response(typ websocket.MessageType, text string) *sip.Response {
	c.t.Helper()
	c.write(typ, text)
	mt, b, err := c.read()
	if err != nil {
		c.t.Fatalf("no answer: %v", err)
	}
	if mt != websocket.MessageText {
		c.t.Errorf("answer sent as %v, want a text message", mt)
	}
	m, err := sip.ParseMessage(b)
	if err != nil {
		c.t.Fatalf("unparseable answer (%v): %q", err, b)
	}
	res, ok := m.(*sip.Response)
	if !ok {
		c.t.Fatalf("answer is no response: %q", b)
	}
	return res
}

func (c *wsClient) do(m msg) *sip.Response {
	c.t.Helper()
	return c.response(websocket.MessageText, m.text(wsHost, c.transport))
}

func wsEnv(t *testing.T, mode string, mutate func(*Config)) *env {
	return startEnv(t, func(c *Config) {
		c.Mode = mode
		c.WSAddr = "127.0.0.1:0"
		if mutate != nil {
			mutate(c)
		}
	})
}

func TestSIPOverWebSocket(t *testing.T) {
	e := wsEnv(t, ModeRegistrar, nil)
	if e.srv.WSAddr() == "" || e.srv.WSAddr() == e.srv.Addr() || e.srv.WSSAddr() != "" {
		t.Fatalf("WS address %q, WSS %q (plain %q)", e.srv.WSAddr(), e.srv.WSSAddr(), e.srv.Addr())
	}
	c := e.wsClient()
	contact := "sip:abc@" + wsHost + ";transport=ws"
	res := c.do(msg{hdrs: []string{"Contact: <" + contact + ">"}})
	wantCode(t, res, 200)
	if via := res.Via(); via == nil || via.Transport != "WS" || via.Host != wsHost {
		t.Errorf("answer's Via %v", via)
	}
	if got := values(res, "Contact"); len(got) != 1 || !strings.HasPrefix(got[0], "<"+contact+">") {
		t.Errorf("Contact %q, want %s", got, contact)
	}
	b := e.live("sip:alice@example.com")
	if len(b) != 1 || b[0].Transport != "ws" || b[0].URI != contact || !strings.HasPrefix(b[0].Received, "127.0.0.1:") {
		t.Fatalf("stored %+v", b)
	}
	if n := e.srv.Stats().WSConns; n != 1 {
		t.Errorf("WSConns %d with one client", n)
	}

	// The connection carries the next request, and a refresh is no
	// retransmission.
	wantCode(t, c.do(msg{cseq: "2 REGISTER", hdrs: []string{"Contact: <" + contact + ">", "Expires: 120"}}), 200)
	if st := e.srv.Stats(); st.Retransmissions != 0 || st.Requests["REGISTER"] != 2 {
		t.Errorf("stats %+v", st)
	}

	// RFC 5626 §4.4.1's ping, in a message of its own, gets its pong.
	c.write(websocket.MessageText, "\r\n\r\n")
	if typ, b, err := c.read(); err != nil || typ != websocket.MessageText || string(b) != "\r\n" {
		t.Fatalf("pong %v %q %v", typ, b, err)
	}

	// A binary message is a SIP message like a text one.
	wantCode(t, c.response(websocket.MessageBinary, msg{method: "OPTIONS", cseq: "3 OPTIONS"}.text(wsHost, "ws")), 200)
	// A broken message is answered, and the connection goes on: framing
	// cannot be lost.
	bad := "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WS " + wsHost + ";branch=z9hG4bKbad\r\n" +
		"From: <sip:alice@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\nCall-ID: x\r\nCSeq: nope\r\nContent-Length: 0\r\n\r\n"
	wantCode(t, c.response(websocket.MessageText, bad), 400)
	wantCode(t, c.do(msg{method: "OPTIONS", cseq: "4 OPTIONS"}), 200)

	c.c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "the connection to be counted closed", func() bool { return e.srv.Stats().WSConns == 0 })
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWebSocketRedirect(t *testing.T) {
	e := wsEnv(t, ModeRedirect, nil)
	c := e.wsClient()
	wantCode(t, c.do(msg{hdrs: []string{"Contact: <sip:abc@" + wsHost + ";transport=ws>"}}), 200)
	res := c.do(msg{method: "INVITE", ruri: "sip:alice@example.com", cseq: "1 INVITE"})
	wantCode(t, res, 302)
	if got := values(res, "Contact"); len(got) != 1 || !strings.Contains(got[0], "sip:abc@"+wsHost+";transport=ws") {
		t.Errorf("Contact %q", got)
	}
}

func TestWebSocketRefusals(t *testing.T) {
	e := wsEnv(t, ModeRegistrar, func(c *Config) { c.WSOrigins = []string{"https://phone.example.com"} })
	url := "ws://" + e.srv.WSAddr()
	origin := func(o string, protos ...string) *websocket.DialOptions {
		h := http.Header{}
		if o != "" {
			h.Set("Origin", o)
		}
		return &websocket.DialOptions{Subprotocols: protos, HTTPHeader: h}
	}
	for _, tc := range []struct {
		name string
		opts *websocket.DialOptions
		code int
	}{
		{"no subprotocol", origin("https://phone.example.com"), 400},
		{"another subprotocol", origin("https://phone.example.com", "chat"), 400},
		{"origin not allowed", origin("https://evil.example.net", "sip"), 403},
		{"no origin", origin("", "sip"), 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, res, err := wsDial(t, url, tc.opts)
			if err == nil {
				t.Fatal("upgraded")
			}
			if res == nil || res.StatusCode != tc.code {
				t.Fatalf("answer %v (%v), want %d", res, err, tc.code)
			}
		})
	}
	if n := e.srv.Stats().WSRefused; n != 4 {
		t.Errorf("WSRefused %d, want 4", n)
	}
	// Origins compare case-insensitively, and the subprotocol may be one
	// of several offered.
	c, _, err := wsDial(t, url, origin("HTTPS://Phone.Example.com", "chat", "sip"))
	if err != nil {
		t.Fatal(err)
	}
	wc := &wsClient{t: t, c: c, transport: "ws"}
	wantCode(t, wc.do(msg{method: "OPTIONS"}), 200)

	// A plain HTTP request is no upgrade.
	res, err := http.Get("http://" + e.srv.WSAddr())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 4 {
		t.Errorf("plain GET got %d", res.StatusCode)
	}
}

func TestWebSocketMessageTooBig(t *testing.T) {
	e := wsEnv(t, ModeRegistrar, func(c *Config) { c.MaxMessageSize = MinMaxMessageSize })
	c := e.wsClient()
	// Exactly the limit is still a message.
	pad := msg{method: "OPTIONS"}.text(wsHost, "ws")
	pad = strings.Replace(pad, "Content-Length: 0", "X-Pad: "+strings.Repeat("p", MinMaxMessageSize-len(pad)-len("X-Pad: \r\n"))+"\r\nContent-Length: 0", 1)
	if len(pad) != MinMaxMessageSize {
		t.Fatalf("padded to %d", len(pad))
	}
	wantCode(t, c.response(websocket.MessageText, pad), 200)

	big := msg{method: "OPTIONS", cseq: "2 OPTIONS", body: strings.Repeat("x", 2*MinMaxMessageSize)}.text(wsHost, "ws")
	c.write(websocket.MessageText, big)
	_, _, err := c.read()
	if got := websocket.CloseStatus(err); got != websocket.StatusMessageTooBig {
		t.Fatalf("read after an oversized message: %v (status %v), want 1009", err, got)
	}
	// The client sees the close frame before the server's reader has
	// counted the hit.
	waitFor(t, "one message_size hit", func() bool { return e.srv.Stats().Limited[LimitMessageSize] == 1 })
	waitFor(t, "the connection to be counted closed", func() bool { return e.srv.Stats().WSConns == 0 })
}

func TestSIPOverSecureWebSocket(t *testing.T) {
	certs := testcerts.Generate(t)
	e := startEnv(t, func(c *Config) {
		c.Mode = ModeRedirect
		c.WSSAddr = "127.0.0.1:0"
		c.TLSConfig = certs.ServerTLS(t)
	})
	if e.srv.WSSAddr() == "" || e.srv.WSAddr() != "" {
		t.Fatalf("WSS address %q, WS %q", e.srv.WSSAddr(), e.srv.WSAddr())
	}
	c := e.wssClient(certs)
	contact := "sip:abc@" + wsHost + ";transport=ws"
	wantCode(t, c.do(msg{hdrs: []string{"Contact: <" + contact + ">"}}), 200)
	if b := e.live("sip:alice@example.com"); len(b) != 1 || b[0].Transport != "wss" {
		t.Fatalf("stored %+v", b)
	}
	res := c.do(msg{method: "INVITE", ruri: "sip:alice@example.com", cseq: "1 INVITE"})
	wantCode(t, res, 302)

	// Plaintext WebSocket on the wss port gets no upgrade.
	if _, _, err := wsDial(t, "ws://"+e.srv.WSSAddr(), nil); err == nil {
		t.Error("plain upgrade accepted on the wss port")
	}
}

func TestWebSocketClose(t *testing.T) {
	e := wsEnv(t, ModeRegistrar, nil)
	c := e.wsClient()
	wantCode(t, c.do(msg{method: "OPTIONS"}), 200)
	closed := make(chan error, 1)
	go func() {
		_, _, err := c.c.Read(context.Background())
		closed <- err
	}()
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-closed:
		if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
			t.Errorf("closed with %v (%v), want 1001", got, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the connection stayed open after Close")
	}
	if n := e.srv.Stats().WSConns; n != 0 {
		t.Errorf("WSConns %d after Close", n)
	}
	if _, _, err := wsDial(t, "ws://"+e.srv.WSAddr(), nil); err == nil {
		t.Error("upgrade after Close")
	}
}

func TestWebSocketConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"wss without a certificate", Config{WSSAddr: "127.0.0.1:0"}, "WSS addr set without a TLS certificate"},
		{"bad address", Config{WSAddr: "nowhere"}, `WS addr "nowhere"`},
		{"empty origin", Config{WSAddr: "127.0.0.1:0", WSOrigins: []string{" "}}, "empty origin"},
		{"open wss", Config{WSSAddr: "192.0.2.1:0", TLSConfig: &tls.Config{Certificates: []tls.Certificate{{}}}},
			"refusing to serve SIP over secure WebSocket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Addr, tc.cfg.Domains, tc.cfg.Logger = "127.0.0.1:0", []string{"example.com"}, quietLogger()
			_, err := New(&fakeLocator{}, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want %q", err, tc.want)
			}
		})
	}
}

// A peer that answers no Ping (its client reads nothing, so its library
// sends no Pong) is closed once a Ping times out; one that answers stays.
func TestWebSocketDeadPeer(t *testing.T) {
	e := wsEnv(t, ModeRegistrar, func(c *Config) { c.wsPing, c.wsPingTimeout = 50*time.Millisecond, 100*time.Millisecond })
	live := e.wsClient()
	reading := make(chan error, 1)
	go func() {
		_, _, err := live.c.Read(context.Background())
		reading <- err
	}()
	dead := e.wsClient()
	waitFor(t, "both connections to be counted", func() bool { return e.srv.Stats().WSConns == 2 })
	waitFor(t, "the dead peer to be closed", func() bool { return e.srv.Stats().WSConns == 1 })
	if _, _, err := dead.read(); err == nil {
		t.Error("the dead peer's connection still carries messages")
	}
	time.Sleep(300 * time.Millisecond) // several pings answered
	if n := e.srv.Stats().WSConns; n != 1 {
		t.Errorf("WSConns %d: the live peer was closed too", n)
	}
	select {
	case err := <-reading:
		t.Errorf("live peer's connection ended: %v", err)
	default:
	}
}

// A connection that sends nothing for the idle timeout is closed even
// though it answers Pings, as over TCP.
func TestWebSocketIdle(t *testing.T) {
	e := wsEnv(t, ModeRegistrar, func(c *Config) { c.TCPIdleTimeout = 200 * time.Millisecond })
	c := e.wsClient()
	wantCode(t, c.do(msg{method: "OPTIONS"}), 200)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, _, err := c.c.Read(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("idle connection not closed: %v", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("closed after %v, before the idle timeout", d)
	}
	waitFor(t, "the connection to be counted closed", func() bool { return e.srv.Stats().WSConns == 0 })
}

package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/testcerts"
)

// wsUA is a browser-style UA on one SIP over WebSocket connection: a
// made-up sent-by host and contact, as RFC 7118's examples have.
type wsUA struct {
	t    *testing.T
	c    *websocket.Conn
	host string
}

func dialWS(t *testing.T, addr string) *wsUA { return dialWSWith(t, "ws://"+addr, nil) }

// dialWSWith upgrades at url; hc (nil: the default client) carries the
// TLS configuration of wss.
func dialWSWith(t *testing.T, url string, hc *http.Client) *wsUA {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"sip"}, HTTPClient: hc})
	if err != nil {
		t.Fatalf("WebSocket upgrade at %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &wsUA{t: t, c: c, host: "df7jal23ls0d.invalid"}
}

// exchange sends one request and returns its answer.
func (u *wsUA) exchange(req string) *sip.Response {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := u.c.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
		u.t.Fatal(err)
	}
	_, b, err := u.c.Read(ctx)
	if err != nil {
		u.t.Fatalf("no answer: %v", err)
	}
	m, err := sip.ParseMessage(b)
	res, ok := m.(*sip.Response)
	if err != nil || !ok {
		u.t.Fatalf("answer is no response (%v): %q", err, b)
	}
	return res
}

func (u *wsUA) request(method, user string, cseq int, extra string) string {
	ruri := "sip:localhost"
	if method != "REGISTER" && user != "" {
		ruri = "sip:" + user + "@localhost"
	}
	return fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/WS %s;branch=z9hG4bK-ws-%s-%d\r\nMax-Forwards: 70\r\n"+
		"From: <sip:caller@localhost>;tag=ws1\r\nTo: <sip:%s@localhost>\r\nCall-ID: ws-%s-%s@test\r\n"+
		"CSeq: %d %s\r\n%sContent-Length: 0\r\n\r\n",
		method, ruri, u.host, method, cseq, user, method, user, cseq, method, extra)
}

// metric returns the value line of a metric on the node's /metrics.
func metric(t *testing.T, n *Node, name string) string {
	t.Helper()
	res, err := n.HTTPClient.Get(n.HTTPBase + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name+" ") {
			return l
		}
	}
	return ""
}

// TestWebSocketSIP: the binary with --sip-ws registers a WebSocket UA
// (stored with transport ws, seen by a gRPC lookup), redirects an INVITE
// for it with 302 to its contact, counts the connection, refuses an
// upgrade without the sip subprotocol, and stops cleanly on SIGTERM with
// the connection open.
func TestWebSocketSIP(t *testing.T) {
	ws := FreeAddr(t)
	n := StartNode(t, NodeOptions{ID: "sipws", Args: []string{"--sip-mode", "redirect", "--sip-ws", ws}})
	u := dialWS(t, ws)
	contact := "sip:k3l8ch2s@" + u.host + ";transport=ws"
	res := u.exchange(u.request("REGISTER", "alice", 1, "Contact: <"+contact+">\r\nExpires: 600\r\n"))
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER over ws: %d %s", res.StatusCode, res.Reason)
	}
	bs := n.Bindings(t, "sip:alice@localhost")
	if len(bs) != 1 || bs[0].Transport != "ws" || bs[0].Uri != contact || !strings.HasPrefix(bs[0].Received, "127.0.0.1:") {
		t.Fatalf("bindings %v", bs)
	}

	res = u.exchange(u.request("INVITE", "alice", 1, ""))
	if res.StatusCode != 302 {
		t.Fatalf("INVITE over ws: %d %s", res.StatusCode, res.Reason)
	}
	if h := res.GetHeader("Contact"); h == nil || !strings.Contains(h.Value(), contact) {
		t.Errorf("302 Contact %v, want %s", h, contact)
	}

	if got := metric(t, n, "locsvc_sip_ws_connections"); got != "locsvc_sip_ws_connections 1" {
		t.Errorf("metric %q with one connection open", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, res, err := websocket.Dial(ctx, "ws://"+ws, nil); err == nil || res == nil || res.StatusCode != http.StatusBadRequest {
		t.Errorf("upgrade without the sip subprotocol: %v %v, want 400", res, err)
	}

	// SIGTERM with the connection open: it is closed going away, and the
	// node stops cleanly.
	closed := make(chan error, 1)
	go func() {
		_, _, err := u.c.Read(context.Background())
		closed <- err
	}()
	if err := n.Stop(10 * time.Second); err != nil {
		t.Fatalf("stop: %v\n%s", err, n.Output())
	}
	select {
	case err := <-closed:
		if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
			t.Errorf("connection closed with %v (%v), want 1001", got, err)
		}
	case <-time.After(5 * time.Second):
		t.Error("connection still open after the node stopped")
	}
	if out := n.Output(); !strings.Contains(out, "msg=stopped") || strings.Contains(out, "panic") || strings.Contains(out, "DATA RACE") {
		t.Errorf("node did not stop cleanly:\n%s", out)
	}
	if out := n.Output(); !strings.Contains(out, "sip_ws="+ws) {
		t.Errorf("serving log line names no ws address:\n%s", out)
	}
}

// TestWebSocketSIPSecure: --sip-wss with the node's certificate; the
// binding records transport wss.
func TestWebSocketSIPSecure(t *testing.T) {
	certs := testcerts.Generate(t)
	wss := FreeAddr(t)
	n := StartNode(t, NodeOptions{ID: "sipwss", TLS: certs, Args: []string{"--sip-mode", "registrar", "--sip-wss", wss}})
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: certs.ClientTLS(t, false)}}
	u := dialWSWith(t, "wss://"+wss, hc)
	contact := "sip:k3l8ch2s@" + u.host + ";transport=ws"
	if res := u.exchange(u.request("REGISTER", "bob", 1, "Contact: <"+contact+">\r\n")); res.StatusCode != 200 {
		t.Fatalf("REGISTER over wss: %d %s", res.StatusCode, res.Reason)
	}
	if bs := n.Bindings(t, "sip:bob@localhost"); len(bs) != 1 || bs[0].Transport != "wss" || bs[0].Uri != contact {
		t.Fatalf("bindings %v", bs)
	}
	// A UA reads, so it answers the close at SIGTERM at once (one that
	// does not holds the stop up to the library's 5 s close handshake).
	go u.c.Read(context.Background())
	if err := n.Stop(10 * time.Second); err != nil {
		t.Fatalf("stop: %v\n%s", err, n.Output())
	}
	if out := n.Output(); strings.Contains(out, "panic") || strings.Contains(out, "DATA RACE") {
		t.Errorf("node output:\n%s", out)
	}
}

package integration

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/internal/testcerts"
)

// lookupWith calls Lookup on addr with the given transport credentials.
func lookupWith(t *testing.T, addr string, creds credentials.TransportCredentials, aor string) (*locsvcv1.LookupResponse, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return locsvcv1.NewLocationServiceClient(conn).Lookup(ctx, &locsvcv1.LookupRequest{Aor: aor})
}

// getWith GETs url with a fresh client using conf (nil: plaintext).
func getWith(conf *tls.Config, url string) (int, error) {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: conf}, Timeout: 3 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// cli runs the locsvc binary and returns its combined output.
func cli(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(LocsvcBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func register(t *testing.T, n *Node, aor, contact string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	exp := int64(3600)
	if _, err := n.Location.Register(ctx, &locsvcv1.RegisterRequest{Aor: aor, CallId: "tls-" + aor, Cseq: 1, Expires: &exp,
		Contacts: []*locsvcv1.Contact{{Uri: contact}}}); err != nil {
		t.Fatalf("Register %s: %v", aor, err)
	}
}

// TestTLSMutual: a node with --tls-client-ca serves only clients with a
// certificate its CA signed, over gRPC and HTTP, and the CLI gets in with
// --ca --cert --key.
func TestTLSMutual(t *testing.T) {
	certs := testcerts.Generate(t)
	n := StartNode(t, NodeOptions{ID: "mtls", NoSIP: true, TLS: certs, MTLS: true})

	// With the client certificate (the node's own clients): Register, Lookup.
	register(t, n, "sip:alice@example.com", "sip:alice@192.0.2.10:5060")
	if bs := n.Bindings(t, "sip:alice@example.com"); len(bs) != 1 || bs[0].Uri != "sip:alice@192.0.2.10:5060" {
		t.Fatalf("bindings %v", bs)
	}

	// Refused: plaintext, TLS without a client certificate, a certificate
	// from another CA.
	rogue, err := tls.LoadX509KeyPair(certs.RogueCert, certs.RogueKey)
	if err != nil {
		t.Fatal(err)
	}
	rogueConf := certs.ClientTLS(t, false)
	// GetClientCertificate, not Certificates: Go's client would not send
	// a certificate whose CA the server did not list, and this one must
	// reach the server to be refused there.
	rogueConf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &rogue, nil }
	for name, creds := range map[string]credentials.TransportCredentials{
		"plaintext":              insecure.NewCredentials(),
		"no client certificate":  credentials.NewTLS(certs.ClientTLS(t, false)),
		"certificate of another": credentials.NewTLS(rogueConf),
	} {
		if res, err := lookupWith(t, n.GRPC, creds, "sip:alice@example.com"); err == nil {
			t.Errorf("gRPC %s: served %v", name, res)
		}
	}
	if res, err := lookupWith(t, n.GRPC, credentials.NewTLS(certs.ClientTLS(t, true)), "sip:alice@example.com"); err != nil || len(res.Bindings) != 1 {
		t.Errorf("gRPC with the client certificate: %v %v", res, err)
	}

	// HTTP likewise.
	url := "https://" + n.HTTP + "/readyz"
	if code, err := getWith(certs.ClientTLS(t, true), url); err != nil || code != http.StatusOK {
		t.Errorf("/readyz with the client certificate: %d %v", code, err)
	}
	if code, err := getWith(certs.ClientTLS(t, false), url); err == nil {
		t.Errorf("/readyz without a client certificate: %d", code)
	}
	if code, err := getWith(rogueConf, url); err == nil {
		t.Errorf("/readyz with another CA's certificate: %d", code)
	}
	if code, err := getWith(nil, "http://"+n.HTTP+"/readyz"); err == nil && code == http.StatusOK {
		t.Error("/readyz answered 200 over plain HTTP")
	}

	// The CLI, by flags and by environment.
	out, err := cli(t, nil, "lookup", "--server", n.GRPC, "--ca", certs.CAFile, "--cert", certs.ClientCert, "--key", certs.ClientKey,
		"sip:alice@example.com")
	if err != nil || !strings.Contains(out, "sip:alice@192.0.2.10:5060") {
		t.Errorf("locsvc lookup --ca --cert --key: %v\n%s", err, out)
	}
	out, err = cli(t, []string{"LOCSVC_CA=" + certs.CAFile, "LOCSVC_CERT=" + certs.ClientCert, "LOCSVC_KEY=" + certs.ClientKey},
		"register", "--server", n.GRPC, "sip:bob@example.com", "sip:bob@192.0.2.11")
	if err != nil || !strings.Contains(out, "sip:bob@192.0.2.11") {
		t.Errorf("locsvc register with LOCSVC_CA/CERT/KEY: %v\n%s", err, out)
	}
	// Refused at the handshake, and said so (not "no replica reachable").
	if out, err := cli(t, nil, "lookup", "--server", n.GRPC, "--ca", certs.CAFile, "sip:alice@example.com"); err == nil ||
		!strings.Contains(out, "cannot reach "+n.GRPC) {
		t.Errorf("locsvc lookup without a client certificate: %v\n%s", err, out)
	}
	if out, err := cli(t, nil, "lookup", "--server", n.GRPC, "--timeout", "2s", "sip:alice@example.com"); err == nil {
		t.Errorf("plaintext locsvc lookup succeeded:\n%s", out)
	}
	if out, err := cli(t, nil, "lookup", "--server", n.GRPC, "--cert", certs.ClientCert, "sip:alice@example.com"); err == nil ||
		!strings.Contains(out, "--cert needs --key") {
		t.Errorf("--cert without --key: %v\n%s", err, out)
	}
	if err := n.Stop(10 * time.Second); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// TestTLSOnly: --tls-cert without --tls-client-ca: any TLS client that
// trusts the CA is served, plaintext is not.
func TestTLSOnly(t *testing.T) {
	certs := testcerts.Generate(t)
	n := StartNode(t, NodeOptions{ID: "tls", NoSIP: true, TLS: certs})
	register(t, n, "sip:carol@example.com", "sip:carol@192.0.2.12")
	if res, err := lookupWith(t, n.GRPC, insecure.NewCredentials(), "sip:carol@example.com"); err == nil {
		t.Errorf("plaintext gRPC served %v", res)
	}
	if res, err := lookupWith(t, n.GRPC, credentials.NewTLS(certs.ClientTLS(t, false)), "sip:carol@example.com"); err != nil || len(res.Bindings) != 1 {
		t.Errorf("TLS gRPC: %v %v", res, err)
	}
	// A client that does not trust the CA refuses the node.
	if res, err := lookupWith(t, n.GRPC, credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12}), "sip:carol@example.com"); err == nil {
		t.Errorf("TLS gRPC without the CA: %v", res)
	}
	if code, err := getWith(certs.ClientTLS(t, false), "https://"+n.HTTP+"/readyz"); err != nil || code != http.StatusOK {
		t.Errorf("https /readyz: %d %v", code, err)
	}
	if code, err := getWith(nil, "http://"+n.HTTP+"/readyz"); err == nil && code == http.StatusOK {
		t.Error("/readyz answered 200 over plain HTTP")
	}
	// TLS 1.1 is refused.
	old := certs.ClientTLS(t, false)
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if _, err := getWith(old, "https://"+n.HTTP+"/readyz"); err == nil {
		t.Error("TLS 1.1 accepted")
	}
	out, err := cli(t, nil, "status", "--server", n.GRPC, "--ca", certs.CAFile)
	if err != nil || !strings.Contains(out, "node tls") {
		t.Errorf("locsvc status --ca: %v\n%s", err, out)
	}
}

// sipTLSConn is a UA on a TLS connection to a node's --sip-tls listener.
type sipTLSConn struct {
	t    *testing.T
	conn *tls.Conn
	r    *bufio.Reader
}

var sipSeq atomic.Int64

func dialSIPTLS(t *testing.T, addr string, certs *testcerts.Certs) *sipTLSConn {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, certs.ClientTLS(t, false))
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &sipTLSConn{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// register sends a REGISTER for user@localhost with its contact at the
// connection's own address.
func (c *sipTLSConn) register(user string) int {
	c.t.Helper()
	local := c.conn.LocalAddr().String()
	n := sipSeq.Add(1)
	msg := fmt.Sprintf("REGISTER sip:localhost SIP/2.0\r\nVia: SIP/2.0/TLS %s;rport;branch=z9hG4bK-tls-%d\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:%s@localhost>;tag=t%d\r\nTo: <sip:%s@localhost>\r\nCall-ID: tls-%d@test\r\n"+
		"CSeq: 1 REGISTER\r\nContact: <sip:%s@%s;transport=tls>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
		local, n, user, n, user, n, user, local)
	return c.exchange(msg)
}

// exchange sends raw text and returns the status code of the answer (0:
// none within 5 s).
func (c *sipTLSConn) exchange(text string) int {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(text)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	status, err := c.r.ReadString('\n')
	if err != nil {
		return 0
	}
	length := 0
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return 0
		}
		if line == "\r\n" {
			break
		}
		if name, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(name), "Content-Length") {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	io.CopyN(io.Discard, c.r, int64(length))
	f := strings.Fields(status)
	if len(f) < 2 || f[0] != "SIP/2.0" {
		c.t.Fatalf("not a SIP answer: %q", status)
	}
	code, _ := strconv.Atoi(f[1])
	return code
}

// TestTLSSIP: REGISTER over --sip-tls is stored with transport tls and
// seen by a gRPC lookup; a malformed request gets 400 and the listener
// goes on; in registrar and proxy modes.
func TestTLSSIP(t *testing.T) {
	certs := testcerts.Generate(t)
	for _, mode := range []string{"registrar", "proxy"} {
		t.Run(mode, func(t *testing.T) {
			sipTLS := FreeAddr(t)
			n := StartNode(t, NodeOptions{ID: "siptls-" + mode, TLS: certs, Args: []string{"--sip-mode", mode, "--sip-tls", sipTLS}})
			c := dialSIPTLS(t, sipTLS, certs)
			if code := c.register("alice"); code != 200 {
				t.Fatalf("REGISTER over TLS: %d", code)
			}
			bs := n.Bindings(t, "sip:alice@localhost")
			if len(bs) != 1 || bs[0].Transport != "tls" || bs[0].Received != c.conn.LocalAddr().String() {
				t.Fatalf("bindings %v", bs)
			}
			// A REGISTER that parses but makes no sense: 400.
			if code := c.exchange("REGISTER sip:localhost SIP/2.0\r\nVia: SIP/2.0/TLS " + c.conn.LocalAddr().String() +
				";branch=z9hG4bK-bad1\r\nMax-Forwards: 70\r\nFrom: <sip:x@localhost>;tag=1\r\nTo: <sip:x@localhost>\r\n" +
				"Call-ID: bad1@test\r\nCSeq: 1 REGISTER\r\nContact: <sip:x@127.0.0.1>\r\nExpires: soon\r\nContent-Length: 0\r\n\r\n"); code != 400 {
				t.Errorf("REGISTER with Expires: soon over TLS: %d, want 400", code)
			}
			// No Content-Length on a stream: where the message ends is
			// unknown. Our own transports (registrar, redirect) answer
			// 400 and hang up; sipgo's (proxy mode) drops it silently.
			bad := dialSIPTLS(t, sipTLS, certs)
			code := bad.exchange("REGISTER sip:localhost SIP/2.0\r\nVia: SIP/2.0/TLS " + bad.conn.LocalAddr().String() +
				";branch=z9hG4bK-bad2\r\nFrom: <sip:x@localhost>;tag=1\r\nTo: <sip:x@localhost>\r\nCall-ID: bad2@test\r\n" +
				"CSeq: 1 REGISTER\r\n\r\n")
			if want := map[string]int{"registrar": 400, "proxy": 0}[mode]; code != want {
				t.Errorf("REGISTER without Content-Length over TLS: %d, want %d", code, want)
			}
			// The first connection and new ones are still served.
			if code := c.register("alice"); code != 200 {
				t.Errorf("REGISTER on the first connection after the 400: %d", code)
			}
			if code := dialSIPTLS(t, sipTLS, certs).register("bob"); code != 200 {
				t.Errorf("REGISTER on a new connection after the 400: %d", code)
			}
			if err := n.Stop(10 * time.Second); err != nil {
				t.Errorf("stop: %v", err)
			}
			if out := n.Output(); strings.Contains(out, "panic") || strings.Contains(out, "DATA RACE") {
				t.Errorf("node output:\n%s", out)
			}
		})
	}
}

// TestTLSLocator: a SIP front end (--locator) reaches an mTLS node with
// --locator-ca/--locator-cert/--locator-key; without its certificate the
// node refuses it and the REGISTER fails.
func TestTLSLocator(t *testing.T) {
	certs := testcerts.Generate(t)
	store := StartNode(t, NodeOptions{ID: "store", NoSIP: true, TLS: certs, MTLS: true})
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"with certificate", []string{"--locator-ca", certs.CAFile, "--locator-cert", certs.ClientCert, "--locator-key", certs.ClientKey}, true},
		{"without certificate", []string{"--locator-ca", certs.CAFile}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sipTLS := FreeAddr(t)
			args := append([]string{"--locator", "grpc://" + store.GRPC, "--sip-mode", "registrar", "--sip-tls", sipTLS}, tc.args...)
			front := StartNode(t, NodeOptions{ID: "front", Args: args, TLS: certs})
			user := strings.ReplaceAll(tc.name, " ", "-")
			code := dialSIPTLS(t, sipTLS, certs).register(user)
			if tc.ok != (code == 200) {
				t.Fatalf("REGISTER through the front end: %d", code)
			}
			if tc.ok && len(store.Bindings(t, "sip:"+user+"@localhost")) != 1 {
				t.Error("binding not in the store node")
			}
			front.Stop(10 * time.Second)
		})
	}
}

func writeKeyring(t *testing.T, keys ...[]byte) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# written by the test; the first key encrypts\n")
	for _, k := range keys {
		b.WriteString(base64.StdEncoding.EncodeToString(k) + "\n\n")
	}
	path := filepath.Join(t.TempDir(), "keyring")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// aliveMembers is the number of alive members n sees.
func aliveMembers(t *testing.T, n *Node) int {
	t.Helper()
	st, err := n.Cluster.Status(context.Background(), &locsvcv1.StatusRequest{})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	alive := 0
	for _, m := range st.Members {
		if m.Alive {
			alive++
		}
	}
	return alive
}

// TestGossipKeyring: a node with a key the ring does not hold stays out;
// a node with the old single key (--gossip-key), and then one further
// along the rotation (new key primary, old key second), join a node whose
// keyring is at the first step (old primary, new second).
func TestGossipKeyring(t *testing.T) {
	oldKey, newKey, wrong := []byte("0123456789abcdef"), []byte("new-key-32-bytes-long-0123456789"), []byte("wrong-key-16byte")
	node := func(id string, join *Node, args ...string) *Node {
		m := StartMemcached(t)
		args = append([]string{"--memcached", m.Addr, "--gossip-profile", "local", "--replicas", "1"}, args...)
		if join != nil {
			args = append(args, "--join", join.Gossip)
		}
		return StartNode(t, NodeOptions{ID: id, NoSIP: true, Args: args})
	}
	n1 := node("node1", nil, "--gossip-keyring", writeKeyring(t, oldKey, newKey))

	wrongFile := filepath.Join(t.TempDir(), "wrong.key")
	os.WriteFile(wrongFile, []byte(base64.StdEncoding.EncodeToString(wrong)+"\n"), 0o600)
	n2 := node("node2", n1, "--gossip-key", wrongFile)
	time.Sleep(3 * time.Second) // several rejoin attempts with the local profile
	if a1, a2 := aliveMembers(t, n1), aliveMembers(t, n2); a1 != 1 || a2 != 1 {
		t.Fatalf("a node with the wrong key got in: node1 sees %d members, node2 %d", a1, a2)
	}
	if !strings.Contains(n2.Output(), "no seed answered") {
		t.Errorf("node2 did not report its failed join:\n%s", n2.Output())
	}

	oldFile := filepath.Join(t.TempDir(), "old.key")
	os.WriteFile(oldFile, []byte(base64.StdEncoding.EncodeToString(oldKey)+"\n"), 0o600)
	n3 := node("node3", n1, "--gossip-key", oldFile)
	WaitFor(t, 10*time.Second, "node1 and node3 (old key only) to see each other", func() bool {
		return aliveMembers(t, n1) == 2 && aliveMembers(t, n3) == 2
	})
	// node3 cannot read what node4 encrypts with the new key: they are two
	// rotation steps apart, so node3 leaves first, as it would in a real
	// rotation (every node is at step 1 before any goes to step 2).
	if err := n3.Stop(15 * time.Second); err != nil {
		t.Fatalf("node3 stop: %v", err)
	}
	WaitFor(t, 10*time.Second, "node1 to see node3 gone", func() bool { return aliveMembers(t, n1) == 1 })
	n4 := node("node4", n1, "--gossip-keyring", writeKeyring(t, newKey, oldKey))
	WaitFor(t, 10*time.Second, "node1 and node4 (new key primary, old second) to see each other", func() bool {
		return aliveMembers(t, n1) == 2 && aliveMembers(t, n4) == 2
	})
	if a := aliveMembers(t, n2); a != 1 {
		t.Errorf("node2 sees %d members", a)
	}
}

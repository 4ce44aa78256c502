package integration

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/locsvc/locsvc/api"
	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/internal/testcerts"
)

// serveRefused runs `locsvc serve` with args, which must be refused before
// anything is bound: exit status 2 and every one of want in the output.
func serveRefused(t *testing.T, want []string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, LocsvcBinary(t), append([]string{"serve"}, args...)...).CombinedOutput()
	var ee *exec.ExitError
	if !asExit(err, &ee) || ee.ExitCode() != 2 {
		t.Errorf("serve %v: err=%v, want exit 2\n%s", args, err, out)
		return
	}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Errorf("serve %v: output lacks %q:\n%s", args, w, out)
		}
	}
}

// An API that others could reach is refused at start unless protected (a
// token, client certificates) or opened on purpose, with a message naming
// the flags; nothing is bound meanwhile.
func TestServeRefusesOpenAPI(t *testing.T) {
	grpcPort, httpAddr := strings.TrimPrefix(FreeAddr(t), "127.0.0.1"), FreeAddr(t)
	fix := []string{"--api-token FILE", "--tls-client-ca", "--api-allow-open"}
	// --advertise, so that the wildcard is not what is refused.
	serveRefused(t, append([]string{`--grpc "0.0.0.0` + grpcPort + `" is not loopback`}, fix...),
		"--sip", "", "--grpc", "0.0.0.0"+grpcPort, "--http", httpAddr, "--advertise", "127.0.0.1")
	serveRefused(t, append([]string{`--http "[::]:`}, fix...),
		"--sip", "", "--http", "[::]"+grpcPort, "--advertise", "127.0.0.1")
	// TLS alone authenticates no client.
	certs := testcerts.Generate(t)
	serveRefused(t, []string{"--grpc", "--api-token FILE"}, "--sip", "", "--grpc", "0.0.0.0"+grpcPort,
		"--http", httpAddr, "--advertise", "127.0.0.1", "--tls-cert", certs.ServerCert, "--tls-key", certs.ServerKey)
	bad := t.TempDir() + "/token"
	if err := os.WriteFile(bad, []byte("too-short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	serveRefused(t, []string{"--api-token: " + bad + ": line 1: a token of 9 characters"}, "--sip", "", "--http", httpAddr, "--api-token", bad)
	serveRefused(t, []string{"--protect-metrics needs --api-token"}, "--sip", "", "--http", httpAddr, "--protect-metrics")
	if c, err := net.DialTimeout("tcp", httpAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("something listens on %s", httpAddr)
	}
}

// dialToken is a gRPC connection to n sending token ("": none).
func dialToken(t *testing.T, n *Node, token string) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(api.BearerToken(func() string { return token })))
	}
	conn, err := grpc.NewClient(n.GRPC, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// httpDo sends one request to n with an Authorization header (none when
// auth is ""), and returns the answer and its body.
func httpDo(t *testing.T, n *Node, method, path, body, auth string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.HTTP+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// With --api-token, a call without the token or with another is refused
// (gRPC UNAUTHENTICATED, HTTP 401) and changes nothing; with it the call
// works. Health, readiness and /metrics stay open; the status page takes
// the token as a Basic password; the CLI sends it from --api-token or
// LOCSVC_API_TOKEN; a rotated file is picked up without a restart.
func TestAPIToken(t *testing.T) {
	token := NewAPIToken()
	n := StartNode(t, NodeOptions{ID: "guarded", NoSIP: true, APIToken: token})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const aor = "sip:alice@example.com"
	attack := &locsvcv1.RegisterRequest{Aor: aor, CallId: "evil", Cseq: 1, Expires: proto.Int64(3600),
		Contacts: []*locsvcv1.Contact{{Uri: "sip:attacker@203.0.113.9"}}}
	const attackJSON = `{"aor":"sip:alice@example.com","call_id":"evil2","cseq":1,"expires":"3600",
	  "contacts":[{"uri":"sip:attacker@203.0.113.9"}]}`

	for _, wrong := range []string{"", NewAPIToken()} {
		loc := locsvcv1.NewLocationServiceClient(dialToken(t, n, wrong))
		if _, err := loc.Register(ctx, attack); status.Code(err) != codes.Unauthenticated {
			t.Errorf("gRPC Register with token %q: %v, want UNAUTHENTICATED", wrong, err)
		}
		if _, err := loc.Lookup(ctx, &locsvcv1.LookupRequest{Aor: aor}); status.Code(err) != codes.Unauthenticated {
			t.Errorf("gRPC Lookup with token %q: %v, want UNAUTHENTICATED", wrong, err)
		}
		auth := ""
		if wrong != "" {
			auth = "Bearer " + wrong
		}
		for _, r := range []struct{ method, path, body string }{
			{"POST", "/v1/register", attackJSON}, {"GET", "/v1/lookup?aor=sip:alice@example.com", ""},
			{"GET", "/v1/status", ""}, {"GET", "/status", ""},
		} {
			resp, body := httpDo(t, n, r.method, r.path, r.body, auth)
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") ||
				!strings.Contains(body, `"UNAUTHENTICATED"`) {
				t.Errorf("%s %s with token %q: %s %q %s", r.method, r.path, wrong, resp.Status, resp.Header.Values("WWW-Authenticate"), body)
			}
		}
	}
	res, err := n.Location.Lookup(ctx, &locsvcv1.LookupRequest{Aor: aor})
	if err != nil || len(res.Bindings) != 0 {
		t.Fatalf("after the refused calls, with the token: %v %v; want no binding", res, err)
	}

	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp, body := httpDo(t, n, "GET", path, "", ""); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a token: %s %s", path, resp.Status, body)
		}
	}
	if m := Scrape(t, n); !strings.Contains(m, `locsvc_grpc_requests_total{code="Unauthenticated",method="/locsvc.v1.LocationService/Register"} 2`) {
		t.Errorf("the refused calls are not counted:\n%s", grepLines(m, "locsvc_grpc_requests_total"))
	}

	// The right token, over gRPC and HTTP, and as a browser sends it.
	if _, err := n.Location.Register(ctx, &locsvcv1.RegisterRequest{Aor: aor, CallId: "c1", Cseq: 1, Expires: proto.Int64(3600),
		Contacts: []*locsvcv1.Contact{{Uri: "sip:alice@192.0.2.10"}}}); err != nil {
		t.Fatalf("Register with the token: %v", err)
	}
	if resp, body := httpDo(t, n, "GET", "/v1/lookup?aor=sip:alice@example.com", "", "Bearer "+token); resp.StatusCode != 200 ||
		!strings.Contains(body, "sip:alice@192.0.2.10") || strings.Contains(body, "attacker") {
		t.Errorf("HTTP lookup with the token: %s %s", resp.Status, body)
	}
	req, _ := http.NewRequest("GET", "http://"+n.HTTP+"/status", nil)
	req.SetBasicAuth("admin", token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("status page with the token as Basic password: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// The CLI.
	cli := func(env []string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, LocsvcBinary(t), args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := cli(nil, "lookup", "--server", n.GRPC, aor); err == nil || !strings.Contains(out, "refused the call") ||
		!strings.Contains(out, "--api-token") {
		t.Errorf("lookup without a token: %v\n%s", err, out)
	}
	if out, err := cli(nil, "lookup", "--server", n.GRPC, "--api-token", n.APITokenFile, aor); err != nil ||
		!strings.Contains(out, "sip:alice@192.0.2.10") {
		t.Errorf("lookup --api-token: %v\n%s", err, out)
	}
	if out, err := cli([]string{"LOCSVC_API_TOKEN=" + n.APITokenFile}, "status", "--server", n.GRPC); err != nil ||
		!strings.Contains(out, "guarded") {
		t.Errorf("status with LOCSVC_API_TOKEN: %v\n%s", err, out)
	}

	// Rotation: a new token first, the old one still accepted; then the
	// old one dropped.
	newer := NewAPIToken()
	if err := os.WriteFile(n.APITokenFile, []byte(newer+"\n"+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lookupWith := func(tok string) codes.Code {
		_, err := locsvcv1.NewLocationServiceClient(dialToken(t, n, tok)).Lookup(ctx, &locsvcv1.LookupRequest{Aor: aor})
		return status.Code(err)
	}
	WaitFor(t, 10*time.Second, "the new token accepted", func() bool { return lookupWith(newer) == codes.OK })
	if c := lookupWith(token); c != codes.OK {
		t.Errorf("the old token during the rotation: %v", c)
	}
	if err := os.WriteFile(n.APITokenFile, []byte(newer+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 10*time.Second, "the old token refused", func() bool { return lookupWith(token) == codes.Unauthenticated })
	if err := n.Stop(10 * time.Second); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
}

// --protect-metrics puts /metrics behind the token; health and readiness
// stay open.
func TestProtectMetrics(t *testing.T) {
	token := NewAPIToken()
	n := StartNode(t, NodeOptions{ID: "metrics", NoSIP: true, APIToken: token, Args: []string{"--protect-metrics"}})
	if resp, _ := httpDo(t, n, "GET", "/metrics", "", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without the token: %s", resp.Status)
	}
	if resp, body := httpDo(t, n, "GET", "/metrics", "", "Bearer "+token); resp.StatusCode != 200 || !strings.Contains(body, "locsvc_") {
		t.Errorf("/metrics with the token: %s", resp.Status)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if resp, _ := httpDo(t, n, "GET", path, "", ""); resp.StatusCode != 200 {
			t.Errorf("%s: %s", path, resp.Status)
		}
	}
}

// A SIP front end of a remote cluster (--locator) sends its --api-token
// with every call; without it the cluster refuses it and the phone gets
// 503, with nothing stored.
func TestLocatorSendsToken(t *testing.T) {
	token := NewAPIToken()
	store := StartNode(t, NodeOptions{ID: "store", NoSIP: true, APIToken: token})
	reg := func(front *Node, scenario, user string) {
		t.Helper()
		MustSipp(t, SippRun{Scenario: scenario, Target: front.SIP, CallID: "reg-" + user + "@%s",
			Keys: map[string]string{"domain": "localhost", "user": user, "seq": "1",
				"contact": "<sip:" + user + "@127.0.0.1:5090>", "expires": "3600"}})
	}
	front := StartNode(t, NodeOptions{ID: "front", Args: []string{"--locator", "grpc://" + store.GRPC,
		"--sip-mode", "registrar", "--domain", "localhost", "--api-token", store.APITokenFile}})
	reg(front, "register_200.xml", "withtoken")
	stranger := StartNode(t, NodeOptions{ID: "stranger", Args: []string{"--locator", "grpc://" + store.GRPC,
		"--sip-mode", "registrar", "--domain", "localhost"}})
	reg(stranger, "register_503.xml", "stranger")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for user, want := range map[string]int{"withtoken": 1, "stranger": 0} {
		res, err := store.Location.Lookup(ctx, &locsvcv1.LookupRequest{Aor: "sip:" + user + "@localhost"})
		if err != nil || len(res.Bindings) != want {
			t.Errorf("%s: %v %v, want %d binding(s)", user, res, err, want)
		}
	}
}

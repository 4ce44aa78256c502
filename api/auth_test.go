package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/locsvc"
)

const goodToken = "the-right-token-0123456789"

// oneToken accepts goodToken only (internal/apitoken does the real,
// constant-time check).
type oneToken struct{}

func (oneToken) Check(tok string) bool { return tok == goodToken }

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestCredential(t *testing.T) {
	for _, tc := range []struct {
		header, want string
		ok           bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER   abc", "abc", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Token abc", "", false},
		{"abc", "", false},
		{basic("anyone", "abc"), "abc", true},
		{basic("", "abc"), "abc", true},
		{basic("abc", ""), "", false},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("no-colon")), "", false},
		{"Basic !!!", "", false},
	} {
		got, ok := credential(tc.header)
		if got != tc.want || ok != tc.ok {
			t.Errorf("credential(%q) = %q, %v; want %q, %v", tc.header, got, ok, tc.want, tc.ok)
		}
	}
}

func TestServiceOf(t *testing.T) {
	for in, want := range map[string]string{
		"/grpc.health.v1.Health/Check":          "grpc.health.v1.Health",
		"/locsvc.v1.LocationService/Register":   "locsvc.v1.LocationService",
		"/grpc.health.v1.Health.Evil/Check":     "grpc.health.v1.Health.Evil",
		"grpc.health.v1.Health":                 "",
		"/grpc.health.v1.Health/Check/Injected": "grpc.health.v1.Health/Check",
	} {
		if got := serviceOf(in); got != want {
			t.Errorf("serviceOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// authGRPC serves a service on the embedded store over gRPC on loopback
// behind the interceptors, and dials it with per-RPC credentials sending
// token ("" sends none) over plaintext, as a client on loopback does.
func authGRPC(t *testing.T, mem *locsvc.MemStore) (dial func(token string) *grpc.ClientConn) {
	t.Helper()
	svc, err := locsvc.NewService(mem, locsvc.DefaultLimits(), "n1")
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	auth := NewAuth(oneToken{})
	g := grpc.NewServer(grpc.UnaryInterceptor(auth.Unary), grpc.StreamInterceptor(auth.Stream))
	srv := NewServer(svc, Info{NodeID: "n1"}, nil)
	srv.RegisterGRPC(g)
	srv.SetServing(true)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	return func(token string) *grpc.ClientConn {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if token != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(BearerToken(func() string { return token })))
		}
		conn, err := grpc.NewClient(lis.Addr().String(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
}

// Without the token, or with another, every call but health is refused
// UNAUTHENTICATED and changes nothing; with it the same calls work.
func TestGRPCAuth(t *testing.T) {
	mem := locsvc.NewMemStore(nil, time.Minute)
	defer mem.Close()
	dial := authGRPC(t, mem)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg := &locsvcv1.RegisterRequest{Aor: "sip:alice@example.com", CallId: "c1", Cseq: 1, Expires: proto.Int64(600),
		Contacts: []*locsvcv1.Contact{{Uri: "sip:attacker@203.0.113.9"}}}

	for _, token := range []string{"", "a-wrong-token-0123456789"} {
		conn := dial(token)
		loc := locsvcv1.NewLocationServiceClient(conn)
		if _, err := loc.Register(ctx, reg); status.Code(err) != codes.Unauthenticated {
			t.Errorf("token %q: Register: %v, want Unauthenticated", token, err)
		}
		if _, err := loc.Lookup(ctx, &locsvcv1.LookupRequest{Aor: reg.Aor}); status.Code(err) != codes.Unauthenticated {
			t.Errorf("token %q: Lookup: %v, want Unauthenticated", token, err)
		}
		if _, err := locsvcv1.NewClusterServiceClient(conn).Status(ctx, &locsvcv1.StatusRequest{}); status.Code(err) != codes.Unauthenticated {
			t.Errorf("token %q: Status: %v, want Unauthenticated", token, err)
		}
		// A stream: reflection.
		rs, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
		if err == nil {
			_ = rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
			_, err = rs.Recv()
		}
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("token %q: reflection stream: %v, want Unauthenticated", token, err)
		}
		// Health stays open, as /healthz does.
		h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("token %q: health: %v %v", token, h, err)
		}
	}

	loc := locsvcv1.NewLocationServiceClient(dial(goodToken))
	res, err := loc.Lookup(ctx, &locsvcv1.LookupRequest{Aor: reg.Aor})
	if err != nil || len(res.Bindings) != 0 {
		t.Fatalf("after the refused calls: %v %v, want no binding", res, err)
	}
	if _, err := loc.Register(ctx, reg); err != nil {
		t.Fatalf("Register with the token: %v", err)
	}
	if res, err := loc.Lookup(ctx, &locsvcv1.LookupRequest{Aor: reg.Aor}); err != nil || len(res.Bindings) != 1 {
		t.Fatalf("Lookup with the token: %v %v", res, err)
	}
}

// The middleware guards every route but the open ones, answers 401 with
// the challenges and the JSON error body, and lets the token in as a
// bearer token or as a Basic password.
func TestHTTPAuth(t *testing.T) {
	mem := locsvc.NewMemStore(nil, time.Minute)
	defer mem.Close()
	svc, err := locsvc.NewService(mem, locsvc.DefaultLimits(), "n1")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", NewHTTP(NewServer(svc, Info{NodeID: "n1", StartedAt: time.Now()}, nil), nil).Handler())
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "m 1\n") })
	mux.HandleFunc("GET /admin/added-later", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "secret\n") })
	srv := httptest.NewServer(NewAuth(oneToken{}, append(OpenPaths, "/metrics")...).HTTP(mux))
	defer srv.Close()

	do := func(method, path, body string, auth ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		for _, a := range auth {
			req.Header.Add("Authorization", a)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	const register = `{"aor":"sip:alice@example.com","call_id":"c1","cseq":1,"expires":"600",
	  "contacts":[{"uri":"sip:attacker@203.0.113.9"}]}`
	for _, tc := range []struct {
		name   string
		auth   []string
		errTok bool // error="invalid_token" in the challenge
	}{
		{"no token", nil, false},
		{"wrong token", []string{"Bearer a-wrong-token-0123456789"}, true},
		{"wrong Basic password", []string{basic("u", "nope-nope-nope-nope")}, true},
		{"unknown scheme", []string{"Token " + goodToken}, false},
		{"two headers", []string{"Bearer " + goodToken, "Bearer " + goodToken}, false},
	} {
		for _, r := range []struct{ method, path, body string }{
			{"POST", "/v1/register", register}, {"GET", "/v1/lookup?aor=sip:alice@example.com", ""},
			{"POST", "/v1/unbind", `{"aor":"sip:alice@example.com"}`}, {"GET", "/v1/status", ""},
			{"GET", "/status", ""}, {"GET", "/", ""}, {"GET", "/admin/added-later", ""}, {"GET", "/nowhere", ""},
		} {
			resp, body := do(r.method, r.path, r.body, tc.auth...)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: %s %s: %s, want 401", tc.name, r.method, r.path, resp.Status)
				continue
			}
			ch := resp.Header.Values("WWW-Authenticate")
			if len(ch) != 2 || !strings.HasPrefix(ch[0], "Bearer ") || !strings.HasPrefix(ch[1], "Basic ") ||
				strings.Contains(ch[0], `error="invalid_token"`) != tc.errTok {
				t.Errorf("%s: %s %s: WWW-Authenticate %q", tc.name, r.method, r.path, ch)
			}
			var doc errDoc
			if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.Error.Code != "UNAUTHENTICATED" {
				t.Errorf("%s: %s %s: body %s", tc.name, r.method, r.path, body)
			}
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp, body := do("GET", path, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("open %s: %s %s", path, resp.Status, body)
		}
	}
	if _, body := do("GET", "/v1/lookup?aor=sip:alice@example.com", "", "Bearer "+goodToken); strings.Contains(body, "attacker") {
		t.Fatalf("a refused register was stored: %s", body)
	}
	if resp, body := do("POST", "/v1/register", register, "Bearer "+goodToken); resp.StatusCode != http.StatusOK {
		t.Fatalf("register with the token: %s %s", resp.Status, body)
	}
	// A browser: Basic, the token as password, any user.
	if resp, body := do("GET", "/status", "", basic("admin", goodToken)); resp.StatusCode != http.StatusOK ||
		!strings.Contains(body, "<html") {
		t.Fatalf("status page with Basic: %s", resp.Status)
	}
	if resp, body := do("GET", "/admin/added-later", "", "bearer "+goodToken); resp.StatusCode != http.StatusOK || body != "secret\n" {
		t.Fatalf("a route added later, with the token: %s %q", resp.Status, body)
	}
}

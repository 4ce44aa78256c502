package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/locsvc"
)

// adminEnv is one in-process node: the service over a store, served on
// gRPC (through the client) and HTTP.
type adminEnv struct {
	svc    *locsvc.Service
	srv    *Server
	client *Client
	conn   *grpc.ClientConn
	http   string // base URL
	calls  *GRPCCalls
}

func newAdminEnv(t *testing.T, store locsvc.Store, walkRate int) *adminEnv {
	t.Helper()
	svc, err := locsvc.NewService(store, locsvc.DefaultLimits(), "n1")
	if err != nil {
		t.Fatal(err)
	}
	e := &adminEnv{svc: svc, calls: &GRPCCalls{}}
	e.srv = NewServer(svc, Info{NodeID: "n1", WalkRate: walkRate}, nil)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.UnaryInterceptor(e.calls.Interceptor), grpc.StreamInterceptor(e.calls.StreamInterceptor))
	e.srv.RegisterGRPC(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	if e.conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.conn.Close() })
	e.client = NewClient(e.conn)
	hs := httptest.NewServer(NewHTTP(e.srv, nil).Handler())
	t.Cleanup(hs.Close)
	e.http = hs.URL
	return e
}

// registerN registers sip:uI@example.com for I in [0, n), with a second
// contact for every third.
func registerN(t *testing.T, svc *locsvc.Service, n int) map[string][]string {
	t.Helper()
	want := map[string][]string{}
	for i := range n {
		req := locsvc.Request{AoR: fmt.Sprintf("sip:u%d@example.com", i), CallID: "c", CSeq: 1,
			Contacts: []locsvc.Contact{{URI: fmt.Sprintf("sip:u%d@192.0.2.1", i)}}}
		if i%3 == 0 {
			req.Contacts = append(req.Contacts, locsvc.Contact{URI: fmt.Sprintf("sip:u%d@192.0.2.2", i)})
		}
		if _, err := svc.Register(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		for _, c := range req.Contacts {
			want[req.AoR] = append(want[req.AoR], c.URI)
		}
	}
	return want
}

func sortedURIs(bs []locsvc.Binding) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.URI)
	}
	slices.Sort(out)
	return out
}

// dumpHTTP reads GET /v1/dump: the AoRs and their contacts, and the error
// document of its last line, if any.
func dumpHTTP(t *testing.T, url string) (int, map[string][]string, *errDoc) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var doc errDoc
		_ = json.NewDecoder(resp.Body).Decode(&doc)
		return resp.StatusCode, nil, &doc
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("dump Content-Type %q", ct)
	}
	got := map[string][]string{}
	var last *errDoc
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if last != nil {
			t.Errorf("a line after the error line: %s", sc.Text())
		}
		var line struct {
			AoR      string `json:"aor"`
			Bindings []struct {
				URI string `json:"uri"`
			} `json:"bindings"`
			Error *json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("dump line %q: %v", sc.Text(), err)
		}
		if line.Error != nil {
			last = &errDoc{}
			_ = json.Unmarshal(sc.Bytes(), last)
			continue
		}
		if _, dup := got[line.AoR]; dup {
			t.Errorf("%s dumped twice", line.AoR)
		}
		for _, b := range line.Bindings {
			got[line.AoR] = append(got[line.AoR], b.URI)
		}
		slices.Sort(got[line.AoR])
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, got, last
}

func sortedMap(m map[string][]string) map[string][]string {
	out := map[string][]string{}
	for k, v := range m {
		out[k] = slices.Sorted(slices.Values(v))
	}
	return out
}

func sameTable(a, b map[string][]string) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d AoRs != %d AoRs", len(a), len(b))
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return fmt.Sprintf("%s: %q != %q", k, v, b[k])
		}
	}
	return ""
}

// Dump, Remove and Counts answer alike in-process, over gRPC (the client)
// and over HTTP.
func TestAdminCallsOverEveryTransport(t *testing.T) {
	mem := locsvc.NewMemStore(nil, time.Minute)
	defer mem.Close()
	e := newAdminEnv(t, mem, 0)
	ctx := context.Background()
	want := sortedMap(registerN(t, e.svc, 50))

	grpcDump := map[string][]string{}
	if err := e.client.Dump(ctx, 0, func(r locsvc.Result) error {
		if _, dup := grpcDump[r.AoR]; dup {
			t.Errorf("%s dumped twice", r.AoR)
		}
		grpcDump[r.AoR] = sortedURIs(r.Bindings)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if d := sameTable(grpcDump, want); d != "" {
		t.Errorf("gRPC dump: %s", d)
	}
	code, httpDump, errLine := dumpHTTP(t, e.http+"/v1/dump?rate=100000")
	if code != 200 || errLine != nil {
		t.Fatalf("HTTP dump: %d %+v", code, errLine)
	}
	if d := sameTable(httpDump, want); d != "" {
		t.Errorf("HTTP dump: %s", d)
	}
	if got := e.calls.Snapshot()["/locsvc.v1.AdminService/Dump"].Codes["OK"]; got != 1 {
		t.Errorf("streamed dumps counted OK: %d, want 1", got)
	}

	// Remove one contact over gRPC, a whole AoR over HTTP.
	res, n, unmatched, err := e.client.Remove(ctx, "sip:u0@example.com", []string{"sip:u0@192.0.2.2", "sip:u0@192.0.2.9"})
	if err != nil || n != 1 || !slices.Equal(unmatched, []string{"sip:u0@192.0.2.9"}) ||
		!slices.Equal(sortedURIs(res.Bindings), []string{"sip:u0@192.0.2.1"}) {
		t.Fatalf("gRPC Remove: %d removed, unmatched %q, left %q, %v", n, unmatched, sortedURIs(res.Bindings), err)
	}
	st, body := call(t, "POST", e.http+"/v1/remove", `{"aor":"sip:u3@example.com"}`)
	if st != 200 || !strings.Contains(body, `"removed":2`) || strings.Contains(body, `"bindings"`) {
		t.Fatalf("HTTP remove: %d %s", st, body)
	}
	want["sip:u0@example.com"] = []string{"sip:u0@192.0.2.1"}
	delete(want, "sip:u3@example.com")
	for _, aor := range []string{"sip:u0@example.com", "sip:u3@example.com"} {
		res, err := e.svc.Lookup(ctx, aor)
		if err != nil || !slices.Equal(sortedURIs(res.Bindings), want[aor]) {
			t.Errorf("lookup %s after remove: %q, %v", aor, sortedURIs(res.Bindings), err)
		}
	}

	bindings := 0
	for _, v := range want {
		bindings += len(v)
	}
	wantCounts := locsvc.Counts{AoRs: len(want), Bindings: bindings}
	if c, err := e.client.Counts(ctx, 0); err != nil || c != wantCounts {
		t.Errorf("gRPC Counts = %+v, %v; want %+v", c, err, wantCounts)
	}
	st, body = call(t, "GET", e.http+"/v1/counts", "")
	var counts struct {
		AoRs     int `json:"aors,string"`
		Bindings int `json:"bindings,string"`
	}
	if err := json.Unmarshal([]byte(body), &counts); err != nil || st != 200 ||
		counts.AoRs != wantCounts.AoRs || counts.Bindings != wantCounts.Bindings {
		t.Errorf("HTTP counts: %d %s, want %+v", st, body, wantCounts)
	}
}

// Bad input is refused with the field to fix, and changes nothing.
func TestAdminBadInput(t *testing.T) {
	mem := locsvc.NewMemStore(nil, time.Minute)
	defer mem.Close()
	e := newAdminEnv(t, mem, 0)
	registerN(t, e.svc, 3)
	before, _ := e.svc.Counts(context.Background(), 1000)
	for _, tc := range []struct {
		method, path, body string
		field              string
	}{
		{"POST", "/v1/remove", `{"aor":"alice"}`, "aor"},
		{"POST", "/v1/remove", `{"aor":"sip:u0@example.com","contacts":["sip:u0@192.0.2.1","not a uri"]}`, "contacts[1]"},
		{"POST", "/v1/remove", `{"aor":`, ""},
		{"GET", "/v1/dump?rate=fast", "", "rate"},
		{"GET", "/v1/counts?rate=-1", "", "rate"},
	} {
		st, body := call(t, tc.method, e.http+tc.path, tc.body)
		var doc errDoc
		if err := json.Unmarshal([]byte(body), &doc); err != nil || st != 400 || doc.Error.Code != "INVALID_ARGUMENT" || doc.Error.Field != tc.field {
			t.Errorf("%s %s %s: %d %s, want 400 on %q", tc.method, tc.path, tc.body, st, body, tc.field)
		}
	}
	_, err := locsvcv1.NewAdminServiceClient(e.conn).Remove(context.Background(), &locsvcv1.RemoveRequest{Aor: "sip:u0@example.com", Contacts: []string{"<sip:u0@192.0.2.1>"}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("gRPC Remove of a bracketed contact: %v", err)
	}
	if le, ok := locsvc.AsError(FromStatus(err)); !ok || le.Field != "contacts[0]" {
		t.Errorf("gRPC Remove error names %+v, want contacts[0]", le)
	}
	if after, _ := e.svc.Counts(context.Background(), 1000); after != before {
		t.Errorf("refused calls changed the table: %+v -> %+v", before, after)
	}
}

// brokenWalk is a store whose walk hands over some records and then meets
// a shard it cannot read.
type brokenWalk struct {
	failingStore
	sets []locsvc.BindingSet
}

func (b brokenWalk) Records(ctx context.Context, _ int, fn func(locsvc.BindingSet) error) error {
	for _, s := range b.sets {
		if err := fn(s); err != nil {
			return err
		}
	}
	return errors.New("list keys of 127.0.0.1:1: connection refused")
}

func aliveSet(aor string) locsvc.BindingSet {
	now := time.Now()
	return locsvc.BindingSet{AoR: aor, Bindings: []locsvc.Binding{{ID: "sip:x@192.0.2.1", URI: "sip:x@192.0.2.1",
		Updated: now, Expires: now.Add(time.Hour), Q: 1000}}}
}

// A dump that meets a part of the table it cannot read delivers the rest,
// then says so: gRPC with UNAVAILABLE at the end of the stream, HTTP with
// a last error line (or an error answer when nothing came before it).
func TestDumpIncomplete(t *testing.T) {
	e := newAdminEnv(t, brokenWalk{sets: []locsvc.BindingSet{aliveSet("sip:a@example.com"), aliveSet("sip:b@example.com")}}, 0)
	var got []string
	err := e.client.Dump(context.Background(), 0, func(r locsvc.Result) error { got = append(got, r.AoR); return nil })
	if le, ok := locsvc.AsError(err); !ok || le.Kind != locsvc.KindUnavailable || len(got) != 2 {
		t.Errorf("gRPC dump: %q then %v, want 2 AoRs then Unavailable", got, err)
	}
	if st, ok := status.FromError(errors.Unwrap(err)); !ok || !strings.Contains(st.Message(), "127.0.0.1:1") {
		t.Errorf("gRPC dump's status does not name the shard: %v", errors.Unwrap(err))
	}
	code, lines, last := dumpHTTP(t, e.http+"/v1/dump")
	if code != 200 || len(lines) != 2 || last == nil || last.Error.Code != "UNAVAILABLE" || !strings.Contains(last.Error.Message, "127.0.0.1:1") {
		t.Errorf("HTTP dump: %d, %d lines, last %+v", code, len(lines), last)
	}

	e = newAdminEnv(t, brokenWalk{}, 0)
	code, _, last = dumpHTTP(t, e.http+"/v1/dump")
	if code != 503 || last == nil || last.Error.SIPCode != 503 {
		t.Errorf("HTTP dump failing at once: %d %+v", code, last)
	}
	st, body := call(t, "GET", e.http+"/v1/counts", "")
	if st != 503 || !strings.Contains(body, "127.0.0.1:1") {
		t.Errorf("HTTP counts: %d %s", st, body)
	}
}

// A client that stops reading ends the dump on the server; StopWalks ends
// every dump and count under way with Unavailable.
func TestDumpStops(t *testing.T) {
	mem := locsvc.NewMemStore(nil, time.Minute)
	defer mem.Close()
	e := newAdminEnv(t, mem, 20) // 20 records a second at most
	registerN(t, e.svc, 100)

	enough := errors.New("enough")
	n := 0
	start := time.Now()
	err := e.client.Dump(context.Background(), 1000, func(locsvc.Result) error { n++; return enough })
	if err != enough || n != 1 {
		t.Errorf("client dump stopped by fn: %v after %d", err, n)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the first AoR took %v at 20 a second", took)
	}

	grpcDone := make(chan error, 1)
	go func() {
		grpcDone <- e.client.Dump(context.Background(), 0, func(locsvc.Result) error { return nil })
	}()
	resp, err := http.Get(e.http + "/v1/dump")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The first line, once flushed, shows the HTTP dump under way.
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || !strings.Contains(line, `"aor"`) {
		t.Fatalf("first dump line %q, %v", line, err)
	}
	e.srv.StopWalks()
	select {
	case err := <-grpcDone:
		if le, ok := locsvc.AsError(err); !ok || le.Kind != locsvc.KindUnavailable {
			t.Errorf("gRPC dump at StopWalks: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("gRPC dump still running 2s after StopWalks")
	}
	rest, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(rest), `"code":"UNAVAILABLE"`) || !strings.Contains(string(rest), "stopping") {
		t.Errorf("HTTP dump after StopWalks ended with %q", rest)
	}
	if _, err := e.client.Counts(context.Background(), 0); err == nil {
		t.Error("a count started after StopWalks ran")
	}
}

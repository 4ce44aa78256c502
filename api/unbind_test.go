package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/locsvc"
)

// unbinder is what the in-process service and the gRPC client both offer,
// so a front end can remove bindings through either.
type unbinder interface {
	Unbind(ctx context.Context, aor string, refs []locsvc.BindingRef) (locsvc.Result, int, error)
}

var (
	_ unbinder = (*locsvc.Service)(nil)
	_ unbinder = (*Client)(nil)
)

const (
	flowURI  = "sip:alice@192.0.2.9:5060;transport=tcp"
	flowInst = `"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"`
)

// aliceRequest registers two contacts for alice: a plain one and an
// RFC 5626 flow.
func aliceRequest(cseq uint32) locsvc.Request {
	return locsvc.Request{AoR: "sip:alice@example.com", CallID: "c1", CSeq: cseq, Contacts: []locsvc.Contact{
		{URI: "sip:alice@192.0.2.1:5060"},
		{URI: flowURI, Instance: flowInst, RegID: 1},
	}}
}

// startGRPC serves svc over gRPC on a loopback port the system picks, its
// calls counted by calls, and returns a connection to it.
func startGRPC(t *testing.T, svc *locsvc.Service, calls *GRPCCalls) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.UnaryInterceptor(calls.Interceptor))
	NewServer(svc, Info{NodeID: "n1"}, nil).RegisterGRPC(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func newMemService(t *testing.T) (*locsvc.Service, *locsvc.MemStore) {
	t.Helper()
	mem := locsvc.NewMemStore(nil, time.Minute)
	t.Cleanup(func() { mem.Close() })
	svc, err := locsvc.NewService(mem, locsvc.DefaultLimits(), "n1")
	if err != nil {
		t.Fatal(err)
	}
	return svc, mem
}

// versions renders what a Lookup sees, URI and version, to tell whether a
// call changed what is stored.
func versions(t *testing.T, svc *locsvc.Service, aor string) string {
	t.Helper()
	res, err := svc.Lookup(context.Background(), aor)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range res.Bindings {
		out = append(out, b.URI+"@"+b.Updated.Format(time.RFC3339Nano))
	}
	return strings.Join(out, ",")
}

// refOf names a binding as a front end would from what Lookup returned it:
// a remote Lookup's bindings carry no ID, so it is derived.
func refOf(t *testing.T, b locsvc.Binding) locsvc.BindingRef {
	t.Helper()
	id, err := locsvc.BindingID(b.URI, b.Instance, b.RegID)
	if err != nil {
		t.Fatal(err)
	}
	return locsvc.BindingRef{ID: id, Updated: b.Updated}
}

// The same removals through the in-process service and the gRPC client
// give the same answers.
func TestUnbindInProcessAndGRPC(t *testing.T) {
	ctx := context.Background()
	for _, transport := range []string{"in-process", "gRPC"} {
		t.Run(transport, func(t *testing.T) {
			svc, _ := newMemService(t)
			var calls GRPCCalls
			var u unbinder = svc
			lookup := svc.Lookup
			if transport == "gRPC" {
				c := NewClient(startGRPC(t, svc, &calls))
				u, lookup = c, c.Lookup
			}
			if _, err := svc.Register(ctx, aliceRequest(1)); err != nil {
				t.Fatal(err)
			}
			seen, err := lookup(ctx, "sip:alice@example.com")
			if err != nil || len(seen.Bindings) != 2 {
				t.Fatalf("Lookup: %+v, %v", seen, err)
			}
			var plain, flow locsvc.BindingRef
			for _, b := range seen.Bindings {
				if b.URI == flowURI {
					flow = refOf(t, b)
				} else {
					plain = refOf(t, b)
				}
			}

			// The flow's connection closed: its version goes, the other stays.
			res, n, err := u.Unbind(ctx, "sip:alice@EXAMPLE.com", []locsvc.BindingRef{flow})
			if err != nil || n != 1 || res.AoR != "sip:alice@example.com" || len(res.Bindings) != 1 ||
				res.Bindings[0].URI != "sip:alice@192.0.2.1:5060" || !res.Known {
				t.Fatalf("Unbind flow: %+v, %d, %v", res, n, err)
			}
			// The phone re-registers the plain contact; the stale ref to it
			// and the one to the flow already removed change nothing.
			if _, err := svc.Register(ctx, aliceRequest(2)); err != nil {
				t.Fatal(err)
			}
			before := versions(t, svc, "sip:alice@example.com")
			res, n, err = u.Unbind(ctx, "sip:alice@example.com", []locsvc.BindingRef{plain, flow})
			if err != nil || n != 0 || len(res.Bindings) != 2 {
				t.Fatalf("stale Unbind: %+v, %d, %v", res, n, err)
			}
			if after := versions(t, svc, "sip:alice@example.com"); after != before {
				t.Errorf("stale refs changed the store:\n%s\n%s", before, after)
			}

			// Bad input: the field is named and nothing changes.
			for _, bad := range []struct {
				aor   string
				refs  []locsvc.BindingRef
				field string
			}{
				{"tel:+15551234", []locsvc.BindingRef{plain}, "aor"},
				// .id in-process, .uri over gRPC: the field each carries.
				{"sip:alice@example.com", []locsvc.BindingRef{plain, {ID: "mailto:alice@example.com", Updated: plain.Updated}}, "bindings[1]."},
				{"sip:alice@example.com", []locsvc.BindingRef{{ID: plain.ID}}, "bindings[0].updated_at"},
			} {
				_, n, err := u.Unbind(ctx, bad.aor, bad.refs)
				e, ok := locsvc.AsError(err)
				if !ok || e.Kind != locsvc.KindInvalid || !strings.HasPrefix(e.Field, bad.field) || n != 0 {
					t.Errorf("Unbind(%q, %v): %d, %v; want KindInvalid naming %s", bad.aor, bad.refs, n, err, bad.field)
				}
			}
			if after := versions(t, svc, "sip:alice@example.com"); after != before {
				t.Errorf("refused calls changed the store:\n%s\n%s", before, after)
			}

			if transport == "gRPC" {
				got := calls.Snapshot()["/locsvc.v1.LocationService/Unbind"].Codes
				if got["OK"] != 2 || got["InvalidArgument"] != 3 {
					t.Errorf("Unbind calls counted %v", got)
				}
			}
		})
	}
}

// A bad ref over gRPC answers InvalidArgument with the SipError and the
// field violation every refusal carries.
func TestGRPCUnbindBadRef(t *testing.T) {
	svc, _ := newMemService(t)
	var calls GRPCCalls
	conn := startGRPC(t, svc, &calls)
	stub := locsvcv1.NewLocationServiceClient(conn)
	ctx := context.Background()
	if _, err := svc.Register(ctx, aliceRequest(1)); err != nil {
		t.Fatal(err)
	}
	before := versions(t, svc, "sip:alice@example.com")
	now := timestamppb.Now()
	for _, tc := range []struct {
		name  string
		refs  []*locsvcv1.BindingRef
		field string
	}{
		{"bad uri", []*locsvcv1.BindingRef{{Uri: "sip:alice@192.0.2.1:5060", UpdatedAt: now}, {Uri: "mailto:x", UpdatedAt: now}}, "bindings[1].uri"},
		{"no uri, no flow", []*locsvcv1.BindingRef{{Instance: flowInst, UpdatedAt: now}}, "bindings[0].uri"},
		{"no updated_at", []*locsvcv1.BindingRef{{Uri: "sip:alice@192.0.2.1:5060"}}, "bindings[0].updated_at"},
		{"invalid updated_at", []*locsvcv1.BindingRef{{Uri: "sip:alice@192.0.2.1:5060", UpdatedAt: &timestamppb.Timestamp{Nanos: -1}}}, "bindings[0].updated_at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := stub.Unbind(ctx, &locsvcv1.UnbindRequest{Aor: "sip:alice@example.com", Bindings: tc.refs})
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument {
				t.Fatalf("code %v (%v), want InvalidArgument", st.Code(), err)
			}
			var sipErr *locsvcv1.SipError
			var violation *errdetails.BadRequest
			for _, d := range st.Details() {
				switch d := d.(type) {
				case *locsvcv1.SipError:
					sipErr = d
				case *errdetails.BadRequest:
					violation = d
				}
			}
			if sipErr == nil || sipErr.Code != 400 || sipErr.Field != tc.field {
				t.Errorf("SipError %v, want 400 naming %s", sipErr, tc.field)
			}
			if violation == nil || len(violation.FieldViolations) != 1 || violation.FieldViolations[0].Field != tc.field {
				t.Errorf("BadRequest %v, want a violation of %s", violation, tc.field)
			}
			if after := versions(t, svc, "sip:alice@example.com"); after != before {
				t.Errorf("a refused call changed the store:\n%s\n%s", before, after)
			}
		})
	}
}

func TestHTTPUnbind(t *testing.T) {
	mem := locsvc.NewMemStore(nil, time.Minute)
	defer mem.Close()
	srv := newTestHTTP(t, mem)
	const register = `{"aor":"sip:alice@example.com","call_id":"c1","cseq":1,
	  "contacts":[{"uri":"sip:alice@192.0.2.1:5060"},{"uri":"` + flowURI + `","instance":"\"<urn:uuid:1>\"","reg_id":1}]}`
	if status, body := call(t, "POST", srv.URL+"/v1/register", register); status != 200 {
		t.Fatalf("register: %d %s", status, body)
	}
	lookup := func() string {
		_, b := call(t, "GET", srv.URL+"/v1/lookup?aor="+url.QueryEscape("sip:alice@example.com"), "")
		return b
	}
	// The front end copies the flow's fields from what Lookup answered.
	var seen struct {
		Bindings []struct {
			URI       string `json:"uri"`
			Instance  string `json:"instance"`
			RegID     int    `json:"reg_id"`
			UpdatedAt string `json:"updated_at"`
		} `json:"bindings"`
	}
	if err := json.Unmarshal([]byte(lookup()), &seen); err != nil || len(seen.Bindings) != 2 {
		t.Fatalf("lookup: %+v, %v", seen, err)
	}
	ref := func(i int, updatedAt string) string {
		b := seen.Bindings[i]
		j, _ := json.Marshal(map[string]any{"uri": b.URI, "instance": b.Instance, "reg_id": b.RegID, "updated_at": updatedAt})
		return string(j)
	}
	var flowRef, plainRef, stale string
	for i, b := range seen.Bindings {
		if b.Instance != "" {
			flowRef = ref(i, b.UpdatedAt)
		} else {
			plainRef, stale = ref(i, b.UpdatedAt), ref(i, "2001-01-01T00:00:00Z")
		}
	}

	cases := []struct {
		name, method, body string
		status, sipCode    int
		field              string
		contains           string
		changes            bool
	}{
		{"bad uri", "POST", `{"aor":"sip:alice@example.com","bindings":[` + plainRef + `,{"uri":"mailto:x","updated_at":"2024-01-01T00:00:00Z"}]}`, 400, 400, "bindings[1].uri", "", false},
		{"no updated_at", "POST", `{"aor":"sip:alice@example.com","bindings":[{"uri":"sip:alice@192.0.2.1:5060"}]}`, 400, 400, "bindings[0].updated_at", "", false},
		{"bad AoR", "POST", `{"aor":"nonsense","bindings":[` + plainRef + `]}`, 400, 400, "aor", "", false},
		{"malformed JSON", "POST", `{"aor":`, 400, 400, "", "malformed JSON", false},
		{"unknown field", "POST", `{"aor":"sip:alice@example.com","bindings":[{"id":"x"}]}`, 400, 400, "", "malformed JSON", false},
		{"wrong method", "GET", "", 405, 0, "", "", false},
		{"stale version", "POST", `{"aor":"sip:alice@example.com","bindings":[` + stale + `]}`, 200, 0, "", `"aor":"sip:alice@example.com"`, false},
		{"flow removed, camelCase", "POST", `{"aor":"sip:alice@example.com","bindings":[` + strings.ReplaceAll(strings.ReplaceAll(flowRef, "reg_id", "regId"), "updated_at", "updatedAt") + `]}`, 200, 0, "", `"removed":1`, true},
		{"again: nothing to remove", "POST", `{"aor":"sip:alice@example.com","bindings":[` + flowRef + `]}`, 200, 0, "", `"bindings":[{"uri":"sip:alice@192.0.2.1:5060"`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := stripExpires(lookup())
			status, body := call(t, tc.method, srv.URL+"/v1/unbind", tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if tc.contains != "" && !strings.Contains(body, tc.contains) {
				t.Errorf("body %s lacks %s", body, tc.contains)
			}
			if tc.status == 200 && !tc.changes && strings.Contains(body, `"removed"`) {
				t.Errorf("nothing removed, but the answer says %s", body)
			}
			if tc.sipCode != 0 {
				var doc errDoc
				if err := json.Unmarshal([]byte(body), &doc); err != nil {
					t.Fatalf("error body %q: %v", body, err)
				}
				if doc.Error.SIPCode != tc.sipCode || doc.Error.Field != tc.field || doc.Error.Code != "INVALID_ARGUMENT" {
					t.Errorf("error body %s: want sip_code %d field %q", body, tc.sipCode, tc.field)
				}
			}
			after := stripExpires(lookup())
			if changed := after != before; changed != tc.changes {
				t.Errorf("store changed: %v, want %v\n%s\n%s", changed, tc.changes, before, after)
			}
			if tc.changes && (!strings.HasPrefix(after, "sip:alice@192.0.2.1:5060@") || strings.Contains(after, ",")) {
				t.Errorf("after removing the flow: %s (before %s)", after, before)
			}
		})
	}
}

func TestHTTPUnbindUnreachableRing(t *testing.T) {
	srv := newTestHTTP(t, failingStore{})
	status, body := call(t, "POST", srv.URL+"/v1/unbind",
		`{"aor":"sip:a@example.com","bindings":[{"uri":"sip:a@192.0.2.1","updated_at":"2024-01-01T00:00:00Z"}]}`)
	var doc errDoc
	_ = json.Unmarshal([]byte(body), &doc)
	if status != 503 || doc.Error.SIPCode != 503 || doc.Error.Code != "UNAVAILABLE" {
		t.Errorf("%d %s, want 503 with sip_code 503", status, body)
	}
}

// RefsToProto and RefsFromProto carry a ref across the wire unchanged,
// flows included, so the client's refs name what the caller named.
func TestRefsRoundTrip(t *testing.T) {
	var refs []locsvc.BindingRef
	for _, c := range []struct {
		uri, instance string
		regID         uint32
	}{
		{"sip:alice@192.0.2.1:5060;transport=TCP;lr", "", 0},
		{flowURI, flowInst, 1},
		{flowURI, `"<<odd;reg-id=2>>"`, 7},
	} {
		id, err := locsvc.BindingID(c.uri, c.instance, c.regID)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, locsvc.BindingRef{ID: id, Updated: time.Unix(1_700_000_000, 123456789)})
	}
	back, err := RefsFromProto(RefsToProto(refs))
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(refs) {
		t.Fatalf("%d refs back, want %d", len(back), len(refs))
	}
	for i := range refs {
		if back[i].ID != refs[i].ID || !back[i].Updated.Equal(refs[i].Updated) {
			t.Errorf("ref %d: %+v came back as %+v", i, refs[i], back[i])
		}
	}
	if back, err := RefsFromProto(nil); back != nil || err != nil {
		t.Errorf("no refs: %v, %v", back, err)
	}
	_, err = RefsFromProto([]*locsvcv1.BindingRef{{Uri: "sip:a@192.0.2.1"}})
	if e, ok := locsvc.AsError(err); !ok || e.Kind != locsvc.KindInvalid || e.Field != "bindings[0].updated_at" {
		t.Errorf("missing updated_at: %v", err)
	}
}

// FuzzHTTPUnbind feeds arbitrary bodies to POST /v1/unbind: the server
// never panics, answers 200 or a 4xx with a JSON error body, and a refused
// body changes nothing stored.
func FuzzHTTPUnbind(f *testing.F) {
	for _, seed := range []string{
		`{"aor":"sip:alice@example.com","bindings":[{"uri":"sip:alice@192.0.2.1","updated_at":"2027-01-15T08:00:00Z"}]}`,
		`{"aor":"sip:alice@example.com","bindings":[{"instance":"<urn:uuid:1>","regId":1,"updatedAt":"2027-01-15T08:00:00.000000001Z"}]}`,
		`{"aor":"sip:alice@example.com","bindings":[{"uri":"sip:alice@192.0.2.1"}]}`,
		`{"aor":"sip:alice@example.com","bindings":[{}]}`, `{"aor":`, `[]`, `{"bindings":null}`,
	} {
		f.Add([]byte(seed))
	}
	now := time.Date(2027, 1, 15, 8, 0, 0, 0, time.UTC)
	mem := locsvc.NewMemStore(func() time.Time { return now }, time.Hour)
	f.Cleanup(func() { mem.Close() })
	svc, err := locsvc.NewService(mem, locsvc.DefaultLimits(), "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	h := NewHTTP(NewServer(svc, Info{NodeID: "fuzz"}, nil), nil).Handler()
	var cseq uint32
	f.Fuzz(func(t *testing.T, body []byte) {
		// A binding for bodies to name, refreshed for every body (the
		// clock stands still, so its version is the next nanosecond).
		cseq++
		if _, err := svc.Register(context.Background(), locsvc.Request{AoR: "sip:alice@example.com", CallID: "c",
			CSeq: cseq, Contacts: []locsvc.Contact{{URI: "sip:alice@192.0.2.1"}}}); err != nil {
			t.Fatal(err)
		}
		before := versions(t, svc, "sip:alice@example.com")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/unbind", bytes.NewReader(body)))
		switch {
		case rec.Code == http.StatusOK:
		case rec.Code >= 400 && rec.Code < 500:
			if !bytes.Contains(rec.Body.Bytes(), []byte(`"error"`)) {
				t.Fatalf("%d without a JSON error body: %s", rec.Code, rec.Body)
			}
			if after := versions(t, svc, "sip:alice@example.com"); after != before {
				t.Fatalf("a refused body (%d) changed the store", rec.Code)
			}
		default:
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
		}
	})
}

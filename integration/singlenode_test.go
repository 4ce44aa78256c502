package integration

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/locsvc/locsvc/api/locsvcv1"
)

// The README's quick start: one node on the embedded store answers a
// Register then a Lookup over gRPC, forgets the binding once it expires, and
// stops cleanly on SIGTERM.
func TestSingleNodeRegisterLookupExpire(t *testing.T) {
	n := StartNode(t, NodeOptions{NoSIP: true, Args: []string{"--min-expires", "1"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	reg, err := n.Location.Register(ctx, &locsvcv1.RegisterRequest{
		Aor: "sip:alice@Example.COM", CallId: "c1@ua", Cseq: 1, Expires: proto.Int64(2),
		Contacts:  []*locsvcv1.Contact{{Uri: "sip:alice@192.0.2.10:5060", Q: proto.Float64(0.7)}},
		UserAgent: "test-ua", Transport: "udp", Received: "192.0.2.10:5060",
	})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if reg.Aor != "sip:alice@example.com" || len(reg.Bindings) != 1 {
		t.Fatalf("Register answered %v", reg)
	}

	got, err := n.Location.Lookup(ctx, &locsvcv1.LookupRequest{Aor: "sip:alice@example.com;transport=tcp"})
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if len(got.Bindings) != 1 {
		t.Fatalf("Lookup found %d bindings, want 1: %v", len(got.Bindings), got)
	}
	b := got.Bindings[0]
	if b.Uri != "sip:alice@192.0.2.10:5060" || b.Q != 0.7 || b.Node != "node1" || b.UserAgent != "test-ua" ||
		b.Expires < 1 || b.Expires > 2 || b.Received != "192.0.2.10:5060" {
		t.Errorf("binding = %v", b)
	}

	WaitFor(t, 5*time.Second, "the binding to expire", func() bool {
		got, err := n.Location.Lookup(ctx, &locsvcv1.LookupRequest{Aor: "sip:alice@example.com"})
		return err == nil && len(got.Bindings) == 0
	})

	metrics := Scrape(t, n)
	for _, want := range []string{
		`locsvc_grpc_requests_total{code="OK",method="/locsvc.v1.LocationService/Register"} 1`,
		`locsvc_grpc_request_duration_seconds_count{method="/locsvc.v1.LocationService/Lookup"}`,
		`locsvc_embedded_records 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	if err := n.Stop(10 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, n.Output())
	}
	if !strings.Contains(n.Output(), "stopped") {
		t.Errorf("no orderly shutdown in the log:\n%s", n.Output())
	}
}

// Bad input gets InvalidArgument naming the field, with the SIP answer
// attached, and changes nothing stored.
func TestSingleNodeInvalidArgument(t *testing.T) {
	n := StartNode(t, NodeOptions{NoSIP: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const aor = "sip:bob@example.com"
	if _, err := n.Location.Register(ctx, &locsvcv1.RegisterRequest{
		Aor: aor, CallId: "c@ua", Cseq: 5, Contacts: []*locsvcv1.Contact{{Uri: "sip:bob@192.0.2.20"}},
	}); err != nil {
		t.Fatal(err)
	}
	long := "sip:" + strings.Repeat("x", 600) + "@example.com"
	cases := []struct {
		name    string
		req     *locsvcv1.RegisterRequest
		code    codes.Code
		field   string
		sipCode uint32
	}{
		{"empty aor", &locsvcv1.RegisterRequest{CallId: "c@ua", Cseq: 6}, codes.InvalidArgument, "aor", 400},
		{"bad aor", &locsvcv1.RegisterRequest{Aor: "mailto:bob@example.com"}, codes.InvalidArgument, "aor", 400},
		{"oversized aor", &locsvcv1.RegisterRequest{Aor: long}, codes.InvalidArgument, "aor", 400},
		{"bad contact", &locsvcv1.RegisterRequest{Aor: aor, CallId: "c@ua", Cseq: 6,
			Contacts: []*locsvcv1.Contact{{Uri: "sip:bob@192.0.2.21"}, {Uri: "http://x"}}},
			codes.InvalidArgument, "contacts[1].uri", 400},
		{"negative expires", &locsvcv1.RegisterRequest{Aor: aor, CallId: "c@ua", Cseq: 6, Expires: proto.Int64(-1),
			Contacts: []*locsvcv1.Contact{{Uri: "sip:bob@192.0.2.21"}}}, codes.InvalidArgument, "expires", 400},
		{"negative contact expires", &locsvcv1.RegisterRequest{Aor: aor, CallId: "c@ua", Cseq: 6,
			Contacts: []*locsvcv1.Contact{{Uri: "sip:bob@192.0.2.21", Expires: proto.Int64(-3)}}},
			codes.InvalidArgument, "contacts[0].expires", 400},
		{"too brief", &locsvcv1.RegisterRequest{Aor: aor, CallId: "c@ua", Cseq: 6,
			Contacts: []*locsvcv1.Contact{{Uri: "sip:bob@192.0.2.21", Expires: proto.Int64(10)}}},
			codes.OutOfRange, "contacts[0].expires", 423},
		{"out of order", &locsvcv1.RegisterRequest{Aor: aor, CallId: "c@ua", Cseq: 5, Expires: proto.Int64(0),
			Contacts: []*locsvcv1.Contact{{Uri: "sip:bob@192.0.2.20"}}}, codes.Aborted, "cseq", 500},
		{"wildcard with contact", &locsvcv1.RegisterRequest{Aor: aor, CallId: "c@ua", Cseq: 6, Wildcard: true,
			Expires: proto.Int64(0), Contacts: []*locsvcv1.Contact{{Uri: "sip:bob@192.0.2.20"}}},
			codes.InvalidArgument, "contacts", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := n.Location.Register(ctx, tc.req)
			st := status.Convert(err)
			if st.Code() != tc.code {
				t.Fatalf("code = %v (%v), want %v", st.Code(), err, tc.code)
			}
			var sipErr *locsvcv1.SipError
			var violation string
			for _, d := range st.Details() {
				switch d := d.(type) {
				case *locsvcv1.SipError:
					sipErr = d
				case *errdetails.BadRequest:
					violation = d.FieldViolations[0].Field
				}
			}
			if sipErr == nil || sipErr.Code != tc.sipCode || sipErr.Field != tc.field {
				t.Errorf("SipError = %v, want code %d field %q", sipErr, tc.sipCode, tc.field)
			}
			if violation != tc.field {
				t.Errorf("BadRequest field = %q, want %q", violation, tc.field)
			}
			if tc.sipCode == 423 && sipErr.GetMinExpires() != 60 {
				t.Errorf("Min-Expires = %d, want 60", sipErr.GetMinExpires())
			}
		})
	}
	got, err := n.Location.Lookup(ctx, &locsvcv1.LookupRequest{Aor: aor})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Bindings) != 1 || got.Bindings[0].Uri != "sip:bob@192.0.2.20" || got.Bindings[0].Cseq != 5 {
		t.Fatalf("refused requests changed the stored bindings: %v", got.Bindings)
	}
	if _, err := n.Location.Lookup(ctx, &locsvcv1.LookupRequest{Aor: "bob"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Lookup of a bad AoR: %v, want InvalidArgument", err)
	}
}

// Flags come from the environment too; a flag whose feature is missing is
// refused rather than ignored; bad flags exit 2 with the flag named.
func TestServeFlags(t *testing.T) {
	n := StartNode(t, NodeOptions{NoSIP: true, Env: []string{"LOCSVC_NODE_ID=from-env"}, ID: "x"})
	st, err := n.Cluster.Status(context.Background(), &locsvcv1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// The command line (--node-id x) wins over the environment.
	if st.NodeId != "x" || st.Store != "embedded" || len(st.Members) != 1 {
		t.Errorf("status = %v", st)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--replicas", "0"}, "--replicas"},
		{[]string{"--memcached-conns", "0"}, "--memcached-conns"},
		{[]string{"--sip-mode", "b2bua"}, "--sip-mode"},
		{[]string{"--trusted", "10.0.0.0/33"}, "--trusted"},
		{[]string{"--min-expires", "100", "--max-expires", "50"}, "max-expires"},
		{[]string{"--grpc", "nonsense"}, "--grpc"},
		{[]string{"--credentials", "/nonexistent/creds"}, "--credentials"},
	} {
		cmd := exec.Command(LocsvcBinary(t), append([]string{"serve", "--sip", ""}, tc.args...)...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !asExit(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("serve %v: err=%v output=%q; want exit 2 naming %s", tc.args, err, out, tc.want)
		}
	}
}

func asExit(err error, ee **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*ee = e
	return ok
}

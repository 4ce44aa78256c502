package api

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/locsvc/locsvc/locsvc"
)

// Every refusal survives the trip through a gRPC status: a remote front
// end sees the same kind, field, Min-Expires and limit as an in-process
// one.
func TestStatusRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		err  *locsvc.Error
		code codes.Code
	}{
		{&locsvc.Error{Kind: locsvc.KindInvalid, Field: "contacts[1].uri", Reason: "bad escape"}, codes.InvalidArgument},
		{&locsvc.Error{Kind: locsvc.KindIntervalTooBrief, Field: "expires", Reason: "too brief", MinExpires: 60}, codes.OutOfRange},
		{&locsvc.Error{Kind: locsvc.KindTooManyContacts, Field: "contacts", Reason: "17 contacts", Limit: locsvc.LimitContacts}, codes.ResourceExhausted},
		{&locsvc.Error{Kind: locsvc.KindInvalid, Field: "aor", Reason: "600 bytes", Limit: locsvc.LimitURILength}, codes.InvalidArgument},
		{&locsvc.Error{Kind: locsvc.KindOutOfOrder, Field: "cseq", Reason: "CSeq 4 not higher"}, codes.Aborted},
		{locsvc.Unavailable(errors.New("boom")), codes.Unavailable},
	} {
		st := status.Convert(toStatus(tc.err))
		if st.Code() != tc.code {
			t.Errorf("%v: code %v, want %v", tc.err, st.Code(), tc.code)
		}
		back, ok := locsvc.AsError(FromStatus(st.Err()))
		if !ok {
			t.Fatalf("%v: FromStatus lost the error", tc.err)
		}
		if back.Kind != tc.err.Kind || back.SIPCode() != tc.err.SIPCode() || back.MinExpires != tc.err.MinExpires ||
			back.Limit != tc.err.Limit {
			t.Errorf("round trip of %v gave %+v", tc.err, back)
		}
		if tc.err.Kind != locsvc.KindUnavailable && (back.Field != tc.err.Field || back.Error() != tc.err.Error()) {
			t.Errorf("round trip of %q gave %q (field %q)", tc.err.Error(), back.Error(), back.Field)
		}
	}
	if got := status.Code(toStatus(errors.New("plain"))); got != codes.Internal {
		t.Errorf("plain error mapped to %v", got)
	}
}

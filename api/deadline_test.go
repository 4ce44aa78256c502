package api

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/locsvc/locsvc/locsvc"
)

// A store call that ran out of its caller's time reaches the service as
// Unavailable wrapping the context's error: gRPC answers it as the
// deadline or the cancellation, and a remote SIP front end, which gets
// that code back, as Unavailable (503) like any other store failure.
func TestStoreContextErrors(t *testing.T) {
	for _, tc := range []struct {
		cause error
		code  codes.Code
	}{
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{context.Canceled, codes.Canceled},
	} {
		err := locsvc.Unavailable(fmt.Errorf("write: 1 of 2 replicas answered: %w", tc.cause))
		st := status.Convert(toStatus(err))
		if st.Code() != tc.code {
			t.Errorf("%v: code %v, want %v", tc.cause, st.Code(), tc.code)
		}
		back, ok := locsvc.AsError(FromStatus(st.Err()))
		if !ok || back.Kind != locsvc.KindUnavailable || back.SIPCode() != 503 {
			t.Errorf("%v: back from gRPC as %+v, want KindUnavailable", tc.cause, back)
		}
	}
}

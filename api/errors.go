package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/locsvc"
)

// answers maps each refusal kind to its gRPC code (see the contract's
// comment on LocationService) and its HTTP status (see httpjson.go).
var answers = map[locsvc.Kind]struct {
	grpc codes.Code
	http int
}{
	locsvc.KindInvalid:          {codes.InvalidArgument, http.StatusBadRequest},
	locsvc.KindIntervalTooBrief: {codes.OutOfRange, http.StatusBadRequest},
	locsvc.KindTooManyContacts:  {codes.ResourceExhausted, http.StatusForbidden},
	locsvc.KindOutOfOrder:       {codes.Aborted, http.StatusConflict},
	locsvc.KindUnavailable:      {codes.Unavailable, http.StatusServiceUnavailable},
}

func codeOf(k locsvc.Kind) codes.Code {
	if a, ok := answers[k]; ok {
		return a.grpc
	}
	return codes.Internal
}

func httpStatusOf(k locsvc.Kind) int {
	if a, ok := answers[k]; ok {
		return a.http
	}
	return http.StatusInternalServerError
}

// kindOf is the inverse of codeOf, for clients; a code no refusal uses
// means the service could not answer.
func kindOf(c codes.Code) locsvc.Kind {
	for k, a := range answers {
		if a.grpc == c {
			return k
		}
	}
	return locsvc.KindUnavailable
}

// toStatus turns a core error into a gRPC status carrying a SipError and,
// for a bad field, a BadRequest field violation.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	e, ok := locsvc.AsError(err)
	if !ok {
		return status.Error(codes.Internal, err.Error())
	}
	st := status.New(codeOf(e.Kind), e.Error())
	details := []protoadapt.MessageV1{&locsvcv1.SipError{
		Code: uint32(e.SIPCode()), Reason: e.SIPReason(), MinExpires: uint32(e.MinExpires), Field: e.Field, Limit: e.Limit,
	}}
	if e.Field != "" {
		details = append(details, &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: e.Field, Description: e.Reason},
		}})
	}
	if withDetails, derr := st.WithDetails(details...); derr == nil {
		st = withDetails
	}
	return st.Err()
}

// FromStatus turns an error from a LocationService call back into the
// *locsvc.Error it was made from, so remote callers (the SIP front end
// against a remote cluster) handle it like a local one.
func FromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() == codes.OK {
		return err
	}
	e := &locsvc.Error{Kind: kindOf(st.Code()), Reason: st.Message(), Err: err}
	for _, d := range st.Details() {
		if se, ok := d.(*locsvcv1.SipError); ok {
			e.Field = se.Field
			e.MinExpires = int(se.MinExpires)
			e.Limit = se.Limit
			e.Reason = strings.TrimPrefix(e.Reason, se.Field+": ")
		}
	}
	if e.Kind == locsvc.KindUnavailable {
		return locsvc.Unavailable(err)
	}
	return e
}

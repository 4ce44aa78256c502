package locsvc

import (
	"errors"
	"fmt"
)

// Kind classifies why a request was refused. Each kind maps to one SIP
// answer and one gRPC code, so every front end answers the same fault the
// same way.
type Kind int

const (
	// KindInvalid: a malformed or oversized field (SIP 400).
	KindInvalid Kind = iota + 1
	// KindIntervalTooBrief: expires below the minimum (SIP 423).
	KindIntervalTooBrief
	// KindTooManyContacts: the AoR would exceed its contact limit (SIP 403).
	KindTooManyContacts
	// KindOutOfOrder: same Call-ID, CSeq not higher than stored (SIP 500,
	// RFC 3261 §10.3 steps 5 and 7).
	KindOutOfOrder
	// KindUnavailable: no replica of the AoR could be reached (SIP 503).
	KindUnavailable
)

// Error is a refused request. Nothing was stored.
type Error struct {
	Kind Kind
	// Field names the request field at fault, e.g. "contacts[1].uri".
	Field  string
	Reason string
	// MinExpires is set with KindIntervalTooBrief.
	MinExpires int
	// Limit names the configured limit that refused the request
	// (LimitContacts, LimitURILength, ...); empty for other errors.
	Limit string
	// Err is the underlying cause, if any (for logs; not for clients).
	Err error
}

// Names of the limits that refuse requests (Error.Limit), as metrics label
// them.
const (
	LimitContacts    = "contacts"     // contacts per request or per AoR (Limits.MaxContacts)
	LimitURILength   = "uri_length"   // an AoR, contact or Path URI (Limits.MaxURILen)
	LimitFieldLength = "field_length" // Call-ID, User-Agent, instance, received (Limits.MaxFieldLen)
	LimitPathEntries = "path_entries" // Path entries (Limits.MaxPath)
)

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Reason
	}
	return e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// SIPCode is the SIP status code that answers this error.
func (e *Error) SIPCode() int {
	switch e.Kind {
	case KindInvalid:
		return 400
	case KindIntervalTooBrief:
		return 423
	case KindTooManyContacts:
		return 403
	case KindOutOfOrder:
		return 500
	case KindUnavailable:
		return 503
	}
	return 500
}

// SIPReason is the reason phrase to send with SIPCode: the fault itself
// rather than the generic phrase, so a UA's log says what went wrong.
func (e *Error) SIPReason() string {
	switch e.Kind {
	case KindIntervalTooBrief:
		return "Interval Too Brief"
	case KindTooManyContacts:
		return "Too Many Contacts"
	case KindUnavailable:
		return "Location Service Unavailable"
	}
	return e.Error()
}

func invalid(field, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Unavailable wraps a storage failure: no replica answered.
func Unavailable(err error) *Error {
	return &Error{Kind: KindUnavailable, Reason: "no replica of the record is reachable", Err: err}
}

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

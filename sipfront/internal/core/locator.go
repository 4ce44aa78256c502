package core

import (
	"context"

	"github.com/locsvc/locsvc/locsvc"
)

// Locator is the location service as the SIP front end uses it. The
// in-process core (*locsvc.Service) satisfies it, and so does a gRPC client
// of a remote cluster (api.Client), so a front end runs unchanged next to
// its store or in front of someone else's. Errors that refuse a request are
// *locsvc.Error values: their SIPCode, SIPReason and MinExpires are the
// answer to send.
type Locator interface {
	Register(ctx context.Context, req locsvc.Request) (locsvc.Result, error)
	Lookup(ctx context.Context, aor string) (locsvc.Result, error)
}

var _ Locator = (*locsvc.Service)(nil)

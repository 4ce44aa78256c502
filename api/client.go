package api

import (
	"context"
	"time"

	"google.golang.org/grpc"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/locsvc"
)

// Client calls a remote locsvc node over gRPC and speaks the core's types,
// so it can stand wherever a *locsvc.Service does (the SIP front end's
// Locator). Refusals come back as *locsvc.Error, as they would in-process.
type Client struct {
	loc locsvcv1.LocationServiceClient
}

// NewClient wraps a connection to a locsvc node.
func NewClient(conn grpc.ClientConnInterface) *Client {
	return &Client{loc: locsvcv1.NewLocationServiceClient(conn)}
}

// Register implements the Locator.
func (c *Client) Register(ctx context.Context, req locsvc.Request) (locsvc.Result, error) {
	res, err := c.loc.Register(ctx, RequestToProto(req))
	if err != nil {
		return locsvc.Result{}, FromStatus(err)
	}
	return locsvc.Result{AoR: res.Aor, Bindings: BindingsFromProto(res.Bindings), Now: time.Now(), Known: len(res.Bindings) > 0}, nil
}

// Lookup implements the Locator.
func (c *Client) Lookup(ctx context.Context, aor string) (locsvc.Result, error) {
	res, err := c.loc.Lookup(ctx, &locsvcv1.LookupRequest{Aor: aor})
	if err != nil {
		return locsvc.Result{}, FromStatus(err)
	}
	return locsvc.Result{AoR: res.Aor, Bindings: BindingsFromProto(res.Bindings), Now: time.Now(), Known: res.Known}, nil
}

// Unbind removes the named versions of an AoR's bindings, as
// locsvc.Service.Unbind does in-process. Each ref goes on the wire as the
// fields Lookup returns (see locsvc.SplitBindingID). The answer does not
// say whether the AoR had entries beyond the live ones, so Known is
// whether it has live bindings or had some removed.
func (c *Client) Unbind(ctx context.Context, aor string, refs []locsvc.BindingRef) (locsvc.Result, int, error) {
	res, err := c.loc.Unbind(ctx, &locsvcv1.UnbindRequest{Aor: aor, Bindings: RefsToProto(refs)})
	if err != nil {
		return locsvc.Result{}, 0, FromStatus(err)
	}
	return locsvc.Result{AoR: res.Aor, Bindings: BindingsFromProto(res.Bindings), Now: time.Now(),
		Known: len(res.Bindings) > 0 || res.Removed > 0}, int(res.Removed), nil
}

package api

import (
	"context"
	"errors"
	"io"
	"time"

	"google.golang.org/grpc"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/locsvc"
)

// Client calls a remote locsvc node over gRPC and speaks the core's types,
// so it can stand wherever a *locsvc.Service does (the SIP front end's
// Locator). Refusals come back as *locsvc.Error, as they would in-process.
type Client struct {
	loc   locsvcv1.LocationServiceClient
	admin locsvcv1.AdminServiceClient
}

// NewClient wraps a connection to a locsvc node.
func NewClient(conn grpc.ClientConnInterface) *Client {
	return &Client{loc: locsvcv1.NewLocationServiceClient(conn), admin: locsvcv1.NewAdminServiceClient(conn)}
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

// Dump calls fn with every AoR of the cluster that has live bindings, as
// locsvc.Service.Dump does in-process (rate 0: the node's pace). An error
// fn returns ends the call and is returned as is.
func (c *Client) Dump(ctx context.Context, rate int, fn func(locsvc.Result) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream when fn stops the dump
	stream, err := c.admin.Dump(ctx, &locsvcv1.DumpRequest{Rate: uint32(max(rate, 0))})
	if err != nil {
		return FromStatus(err)
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return FromStatus(err)
		}
		r := locsvc.Result{AoR: msg.Aor, Bindings: BindingsFromProto(msg.Bindings), Now: time.Now(), Known: true}
		if err := fn(r); err != nil {
			return err
		}
	}
}

// Remove takes bindings of an AoR out on every replica, as
// locsvc.Service.Remove does in-process: all of them when contacts is
// empty. It returns the bindings left, how many it removed and the
// contacts that matched none.
func (c *Client) Remove(ctx context.Context, aor string, contacts []string) (locsvc.Result, int, []string, error) {
	res, err := c.admin.Remove(ctx, &locsvcv1.RemoveRequest{Aor: aor, Contacts: contacts})
	if err != nil {
		return locsvc.Result{}, 0, nil, FromStatus(err)
	}
	return locsvc.Result{AoR: res.Aor, Bindings: BindingsFromProto(res.Bindings), Now: time.Now(),
		Known: len(res.Bindings) > 0 || res.Removed > 0}, int(res.Removed), res.Unmatched, nil
}

// Counts counts the cluster's AoRs with live bindings and those bindings
// (rate 0: the node's pace).
func (c *Client) Counts(ctx context.Context, rate int) (locsvc.Counts, error) {
	res, err := c.admin.Counts(ctx, &locsvcv1.CountsRequest{Rate: uint32(max(rate, 0))})
	if err != nil {
		return locsvc.Counts{}, FromStatus(err)
	}
	return locsvc.Counts{AoRs: int(res.Aors), Bindings: int(res.Bindings)}, nil
}

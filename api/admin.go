package api

import (
	"context"

	"google.golang.org/grpc"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/locsvc"
)

// defaultWalkRate paces dumps and counts when Info.WalkRate is not set:
// the repair pass's default, which live traffic is known to bear.
const defaultWalkRate = 5000

// walkRate is the pace of one dump or count: what the caller asked for,
// but never faster than the node allows.
func (s *Server) walkRate(asked uint32) int {
	limit := s.info.WalkRate
	if limit < 1 {
		limit = defaultWalkRate
	}
	if asked == 0 || asked > uint32(limit) {
		return limit
	}
	return int(asked)
}

// errStopping ends the dumps and counts under way when the node stops:
// they may run for minutes, and would hold its drain up until the drain
// timeout cut them anyway.
var errStopping = &locsvc.Error{Kind: locsvc.KindUnavailable, Reason: "the node is stopping: ask another"}

// StopWalks ends the dumps and counts under way, and those to come, with
// Unavailable. The node calls it as it stops, before it drains the
// servers.
func (s *Server) StopWalks() { s.stopWalks(errStopping) }

// walkContext is ctx, also ended by StopWalks.
func (s *Server) walkContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(s.walks, func() { cancel(context.Cause(s.walks)) })
	return ctx, func() { stop(); cancel(nil) }
}

// Dump implements AdminService.
func (s *Server) Dump(in *locsvcv1.DumpRequest, stream grpc.ServerStreamingServer[locsvcv1.DumpResponse]) error {
	ctx, done := s.walkContext(stream.Context())
	defer done()
	var sendErr error
	err := s.svc.Dump(ctx, s.walkRate(in.GetRate()), func(r locsvc.Result) error {
		sendErr = stream.Send(dumpEntry(r))
		return sendErr
	})
	if sendErr != nil {
		return sendErr // the client went away: already a status
	}
	return toStatus(err)
}

func dumpEntry(r locsvc.Result) *locsvcv1.DumpResponse {
	return &locsvcv1.DumpResponse{Aor: r.AoR, Bindings: BindingsToProto(r.Bindings, r.Now)}
}

// Remove implements AdminService.
func (s *Server) Remove(ctx context.Context, in *locsvcv1.RemoveRequest) (*locsvcv1.RemoveResponse, error) {
	out, err := s.remove(ctx, in)
	if err != nil {
		return nil, toStatus(err)
	}
	return out, nil
}

// remove serves Remove for both transports.
func (s *Server) remove(ctx context.Context, in *locsvcv1.RemoveRequest) (*locsvcv1.RemoveResponse, error) {
	res, n, unmatched, err := s.svc.Remove(ctx, in.GetAor(), in.GetContacts())
	if err != nil {
		return nil, err
	}
	return &locsvcv1.RemoveResponse{Aor: res.AoR, Removed: uint32(n), Bindings: BindingsToProto(res.Bindings, res.Now), Unmatched: unmatched}, nil
}

// Counts implements AdminService.
func (s *Server) Counts(ctx context.Context, in *locsvcv1.CountsRequest) (*locsvcv1.CountsResponse, error) {
	out, err := s.counts(ctx, in)
	if err != nil {
		return nil, toStatus(err)
	}
	return out, nil
}

func (s *Server) counts(ctx context.Context, in *locsvcv1.CountsRequest) (*locsvcv1.CountsResponse, error) {
	ctx, done := s.walkContext(ctx)
	defer done()
	c, err := s.svc.Counts(ctx, s.walkRate(in.GetRate()))
	if err != nil {
		return nil, err
	}
	return &locsvcv1.CountsResponse{Aors: uint64(c.AoRs), Bindings: uint64(c.Bindings)}, nil
}

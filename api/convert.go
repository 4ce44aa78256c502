package api

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/locsvc"
)

// RequestFromProto maps a RegisterRequest onto the core's Request.
func RequestFromProto(in *locsvcv1.RegisterRequest) locsvc.Request {
	r := locsvc.Request{
		AoR: in.GetAor(), Wildcard: in.GetWildcard(), CallID: in.GetCallId(), CSeq: in.GetCseq(),
		Path: in.GetPath(), Received: in.GetReceived(), Transport: in.GetTransport(), UserAgent: in.GetUserAgent(),
	}
	if in.Expires != nil {
		r.Expires, r.HasExpires = in.GetExpires(), true
	}
	for _, c := range in.GetContacts() {
		lc := locsvc.Contact{URI: c.GetUri(), Instance: c.GetInstance(), RegID: c.GetRegId()}
		if c.Expires != nil {
			lc.Expires, lc.HasExpires = c.GetExpires(), true
		}
		if c.Q != nil {
			lc.Q, lc.HasQ = c.GetQ(), true
		}
		r.Contacts = append(r.Contacts, lc)
	}
	return r
}

// RequestToProto is the inverse of RequestFromProto, for clients.
func RequestToProto(r locsvc.Request) *locsvcv1.RegisterRequest {
	out := &locsvcv1.RegisterRequest{
		Aor: r.AoR, Wildcard: r.Wildcard, CallId: r.CallID, Cseq: r.CSeq, Path: r.Path,
		Received: r.Received, Transport: r.Transport, UserAgent: r.UserAgent,
	}
	if r.HasExpires {
		out.Expires = &r.Expires
	}
	for _, c := range r.Contacts {
		pc := &locsvcv1.Contact{Uri: c.URI, Instance: c.Instance, RegId: c.RegID}
		if c.HasExpires {
			pc.Expires = &c.Expires
		}
		if c.HasQ {
			pc.Q = &c.Q
		}
		out.Contacts = append(out.Contacts, pc)
	}
	return out
}

// BindingsToProto renders live bindings with their remaining lifetime as of now.
func BindingsToProto(bs []locsvc.Binding, now time.Time) []*locsvcv1.Binding {
	out := make([]*locsvcv1.Binding, len(bs))
	for i, b := range bs {
		out[i] = &locsvcv1.Binding{
			Uri: b.URI, Expires: remaining(b.Expires, now), ExpiresAt: timestamppb.New(b.Expires),
			Q: float64(b.Q) / 1000, CallId: b.CallID, Cseq: b.CSeq, Path: b.Path, Received: b.Received,
			Transport: b.Transport, Instance: b.Instance, RegId: b.RegID, UserAgent: b.UserAgent,
			UpdatedAt: timestamppb.New(b.Updated), Node: b.Node,
		}
	}
	return out
}

// BindingsFromProto is the inverse of BindingsToProto, for clients. The
// result is in the order received (best q first).
func BindingsFromProto(in []*locsvcv1.Binding) []locsvc.Binding {
	out := make([]locsvc.Binding, len(in))
	for i, b := range in {
		out[i] = locsvc.Binding{
			URI: b.GetUri(), Expires: b.GetExpiresAt().AsTime(), Updated: b.GetUpdatedAt().AsTime(),
			Q: int(b.GetQ()*1000 + 0.5), CallID: b.GetCallId(), CSeq: b.GetCseq(), Path: b.GetPath(),
			Received: b.GetReceived(), Transport: b.GetTransport(), Instance: b.GetInstance(),
			RegID: b.GetRegId(), UserAgent: b.GetUserAgent(), Node: b.GetNode(),
		}
	}
	return out
}

// remaining is the whole seconds left, rounded down so a UA refreshes in
// time, and at least 1 for a live binding: a UA told "expires=0" would
// think it had been removed.
func remaining(exp, now time.Time) int64 {
	return max(int64(exp.Sub(now)/time.Second), 1)
}

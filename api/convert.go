package api

import (
	"fmt"
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

// RefsFromProto names each binding by the identity the registrar gives it
// (locsvc.BindingID), so a ref built from a Lookup's answer finds the
// binding whatever spelling of the contact it carries. Errors name the
// field at fault ("bindings[1].uri").
func RefsFromProto(in []*locsvcv1.BindingRef) ([]locsvc.BindingRef, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]locsvc.BindingRef, len(in))
	for i, r := range in {
		id, err := locsvc.BindingID(r.GetUri(), r.GetInstance(), r.GetRegId())
		if err != nil {
			return nil, invalidRef(i, "uri", err.Error())
		}
		ts := r.GetUpdatedAt()
		if ts == nil {
			return nil, invalidRef(i, "updated_at", "missing: the version of the binding to remove")
		}
		if err := ts.CheckValid(); err != nil {
			return nil, invalidRef(i, "updated_at", err.Error())
		}
		out[i] = locsvc.BindingRef{ID: id, Updated: ts.AsTime()}
	}
	return out, nil
}

func invalidRef(i int, field, reason string) *locsvc.Error {
	return &locsvc.Error{Kind: locsvc.KindInvalid, Field: fmt.Sprintf("bindings[%d].%s", i, field), Reason: reason}
}

// RefsToProto is the inverse of RefsFromProto, for clients.
func RefsToProto(refs []locsvc.BindingRef) []*locsvcv1.BindingRef {
	if len(refs) == 0 {
		return nil
	}
	out := make([]*locsvcv1.BindingRef, len(refs))
	for i, r := range refs {
		uri, instance, regID := locsvc.SplitBindingID(r.ID)
		out[i] = &locsvcv1.BindingRef{Uri: uri, Instance: instance, RegId: regID, UpdatedAt: timestamppb.New(r.Updated)}
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

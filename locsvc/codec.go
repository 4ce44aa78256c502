package locsvc

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/locsvc/locsvc/locsvc/internal/recordpb"
)

// formatV1 tags a stored value as a locsvc.record.v1.BindingSet. A new
// encoding gets a new tag, so nodes of different versions can tell what
// they read.
const formatV1 = 1

// Encode serialises a binding set for storage.
func Encode(s BindingSet) ([]byte, error) {
	pb := &recordpb.BindingSet{Aor: s.AoR, Bindings: make([]*recordpb.StoredBinding, len(s.Bindings))}
	// One allocation for all the messages rather than one each.
	sbs := make([]recordpb.StoredBinding, len(s.Bindings))
	for i := range s.Bindings {
		b, sb := &s.Bindings[i], &sbs[i]
		sb.Uri, sb.Expires, sb.Updated, sb.Q = b.URI, b.Expires.Unix(), b.Updated.UnixNano(), uint32(b.Q)
		sb.CallId, sb.Cseq, sb.Path, sb.Received = b.CallID, b.CSeq, b.Path, b.Received
		sb.Transport, sb.Instance, sb.RegId = b.Transport, b.Instance, b.RegID
		sb.UserAgent, sb.Node, sb.Removed = b.UserAgent, b.Node, b.Removed
		if !b.Retain.IsZero() {
			sb.Retain = b.Retain.Unix()
		}
		pb.Bindings[i] = sb
	}
	// The tag and the body in one buffer of the final size: Size fills the
	// messages' size caches, which the marshal then reuses.
	opts := proto.MarshalOptions{Deterministic: true, UseCachedSize: true}
	buf := make([]byte, 1, 1+opts.Size(pb))
	buf[0] = formatV1
	data, err := opts.MarshalAppend(buf, pb)
	if err != nil {
		return nil, err
	}
	return data, nil
}

// ErrCorrupt marks a stored value that cannot be decoded.
var ErrCorrupt = errors.New("corrupt record")

// Decode parses a stored value. Values come from storage shared with other
// programs and nodes of other versions, so anything unexpected is an error,
// never a panic, and the result is a valid BindingSet (sorted, unique IDs).
func Decode(data []byte) (BindingSet, error) {
	var s BindingSet
	if len(data) == 0 {
		return s, fmt.Errorf("%w: empty value", ErrCorrupt)
	}
	if data[0] != formatV1 {
		return s, fmt.Errorf("%w: unknown format %d", ErrCorrupt, data[0])
	}
	var pb recordpb.BindingSet
	if err := proto.Unmarshal(data[1:], &pb); err != nil {
		return s, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	s.AoR = pb.Aor
	s.Bindings = make([]Binding, 0, len(pb.Bindings))
	for _, sb := range pb.Bindings {
		id, err := BindingID(sb.Uri, sb.Instance, sb.RegId)
		if err != nil {
			return BindingSet{}, fmt.Errorf("%w: binding %q: %v", ErrCorrupt, sb.Uri, err)
		}
		if sb.Q > 1000 {
			return BindingSet{}, fmt.Errorf("%w: q %d out of range", ErrCorrupt, sb.Q)
		}
		s.Bindings = append(s.Bindings, Binding{
			ID: id, URI: sb.Uri, Expires: time.Unix(sb.Expires, 0), Updated: time.Unix(0, sb.Updated),
			Q: int(sb.Q), CallID: sb.CallId, CSeq: sb.Cseq, Path: sb.Path, Received: sb.Received,
			Transport: sb.Transport, Instance: sb.Instance, RegID: sb.RegId, UserAgent: sb.UserAgent,
			Node: sb.Node, Removed: sb.Removed,
		})
		if sb.Retain != 0 {
			s.Bindings[len(s.Bindings)-1].Retain = time.Unix(sb.Retain, 0)
		}
	}
	return normalizeSet(s), nil
}

// normalizeSet sorts by ID and resolves duplicate IDs by the merge order,
// which is what merging the entries one by one would give.
func normalizeSet(s BindingSet) BindingSet {
	slices.SortStableFunc(s.Bindings, func(a, b Binding) int { return strings.Compare(a.ID, b.ID) })
	out := s.Bindings[:0]
	for _, b := range s.Bindings {
		if n := len(out); n > 0 && out[n-1].ID == b.ID {
			if newer(&b, &out[n-1]) {
				out[n-1] = b
			}
			continue
		}
		out = append(out, b)
	}
	s.Bindings = out
	return s
}

package locsvc

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/locsvc/locsvc/internal/sipuri"
)

// Request is one REGISTER as the registrar sees it, before validation.
// Fields mirror the SIP headers they come from.
type Request struct {
	AoR        string // To URI
	Contacts   []Contact
	Wildcard   bool // Contact: *
	Expires    int64
	HasExpires bool // an Expires header was present
	CallID     string
	CSeq       uint32
	Path       []string // Path header URIs, topmost first
	Received   string   // source "host:port" (or a SIP URI naming it)
	Transport  string
	UserAgent  string
}

// Contact is one Contact header value.
type Contact struct {
	URI        string
	Expires    int64
	HasExpires bool // the contact has an expires parameter
	Q          float64
	HasQ       bool
	Instance   string // +sip.instance
	RegID      uint32 // reg-id, 0 when absent
}

// Registration is a Request that passed Check: AoR normalised, every
// contact's expiry decided, identities computed.
type Registration struct {
	AoR       string
	Contacts  []ContactUpdate
	Wildcard  bool
	CallID    string
	CSeq      uint32
	Path      []string
	Received  string
	Transport string
	UserAgent string
}

// ContactUpdate is one contact of a Registration.
type ContactUpdate struct {
	ID       string
	URI      string
	Expires  time.Duration // 0 removes the binding
	Q        int           // thousandths
	Instance string
	RegID    uint32
}

// IsQuery reports whether the REGISTER only asks for the current bindings.
func (r *Registration) IsQuery() bool { return !r.Wildcard && len(r.Contacts) == 0 }

var transports = []string{"udp", "tcp", "tls", "sctp", "ws", "wss"}

// Check validates a REGISTER and resolves what it asks for (RFC 3261 §10.3
// steps 5 and 6) without looking at stored state, so a bad request is
// refused before any I/O. Errors name the field at fault.
func Check(req Request, lim Limits) (Registration, error) {
	var r Registration
	if err := checkLen("aor", req.AoR, lim.MaxURILen, LimitURILength); err != nil {
		return r, err
	}
	aor, err := NormalizeAoR(req.AoR)
	if err != nil {
		return r, invalid("aor", "%v", err)
	}
	r.AoR = aor

	modifying := req.Wildcard || len(req.Contacts) > 0
	if modifying && req.CallID == "" {
		return r, invalid("call_id", "required when contacts are given")
	}
	if err := checkText("call_id", req.CallID, lim.MaxFieldLen); err != nil {
		return r, err
	}
	if req.CSeq > math.MaxInt32 {
		return r, invalid("cseq", "%d exceeds 2**31-1 (RFC 3261 §8.1.1.5)", req.CSeq)
	}
	if err := checkText("user_agent", req.UserAgent, lim.MaxFieldLen); err != nil {
		return r, err
	}
	if req.HasExpires && req.Expires < 0 {
		return r, invalid("expires", "negative (%d)", req.Expires)
	}
	r.CallID, r.CSeq, r.UserAgent = req.CallID, req.CSeq, req.UserAgent
	if err := checkRoute(req, lim, &r); err != nil {
		return r, err
	}

	if req.Wildcard {
		// §10.3 step 6: "*" is only valid alone and with Expires: 0.
		if len(req.Contacts) > 0 {
			return r, invalid("contacts", `Contact "*" must be the only contact`)
		}
		if !req.HasExpires || req.Expires != 0 {
			return r, invalid("expires", `Contact "*" requires Expires: 0`)
		}
		r.Wildcard = true
		return r, nil
	}
	if len(req.Contacts) > lim.MaxContacts {
		return r, &Error{Kind: KindTooManyContacts, Field: "contacts",
			Reason: fmt.Sprintf("%d contacts in one request, at most %d allowed", len(req.Contacts), lim.MaxContacts), Limit: LimitContacts}
	}
	if len(req.Contacts) > 0 {
		r.Contacts = make([]ContactUpdate, 0, len(req.Contacts))
	}
	for i, c := range req.Contacts {
		u, err := checkContact(c, req, lim)
		if err != nil {
			return r, inList("contacts", i, err)
		}
		r.Contacts = append(r.Contacts, u)
	}
	return r, nil
}

// checkRoute checks how the phone is reached (transport, source, Path)
// and copies it into r.
func checkRoute(req Request, lim Limits, r *Registration) error {
	if req.Transport != "" {
		t := strings.ToLower(req.Transport)
		if !slices.Contains(transports, t) {
			return invalid("transport", "unknown transport %q", req.Transport)
		}
		r.Transport = t
	}
	if req.Received != "" {
		if err := checkReceived(req.Received, lim); err != nil {
			return err
		}
		r.Received = req.Received
	}
	if len(req.Path) > lim.MaxPath {
		e := invalid("path", "%d entries, at most %d allowed", len(req.Path), lim.MaxPath)
		e.Limit = LimitPathEntries
		return e
	}
	for i, p := range req.Path {
		if err := checkPathEntry(p, lim); err != nil {
			return inList("path", i, err)
		}
	}
	r.Path = slices.Clone(req.Path)
	return nil
}

// inList names the field of err, an *Error about entry i of list, in full:
// "path[2]", "contacts[1].uri". The checks of an entry leave the index out
// so that an accepted REGISTER does not pay for formatting field names.
func inList(list string, i int, err error) error {
	if e, ok := AsError(err); ok {
		name := fmt.Sprintf("%s[%d]", list, i)
		if e.Field != "" {
			name += "." + e.Field
		}
		e.Field = name
	}
	return err
}

func checkPathEntry(p string, lim Limits) error {
	if err := checkLen("", p, lim.MaxURILen, LimitURILength); err != nil {
		return err
	}
	if _, err := sipuri.Parse(p); err != nil {
		return invalid("", "%v", err)
	}
	return nil
}

// checkContact checks one contact; errors name its fields without the
// index (see inList).
func checkContact(c Contact, req Request, lim Limits) (ContactUpdate, error) {
	var u ContactUpdate
	if err := checkLen("uri", c.URI, lim.MaxURILen, LimitURILength); err != nil {
		return u, err
	}
	if c.URI == "" {
		return u, invalid("uri", "empty")
	}
	if c.URI == "*" {
		return u, invalid("uri", `"*" must be sent as the wildcard, alone and with Expires: 0`)
	}
	if err := checkText("instance", c.Instance, lim.MaxFieldLen); err != nil {
		return u, err
	}
	id, err := BindingID(c.URI, c.Instance, c.RegID)
	if err != nil {
		return u, invalid("uri", "%v", err)
	}
	if _, err := sipuri.Parse(c.URI); err != nil {
		// A flow identity does not parse the URI, but routing will.
		return u, invalid("uri", "%v", err)
	}
	u.ID, u.URI, u.Instance, u.RegID = id, c.URI, c.Instance, c.RegID

	u.Q = 1000
	if c.HasQ {
		if math.IsNaN(c.Q) || c.Q < 0 || c.Q > 1 {
			return u, invalid("q", "%v is outside 0.0 to 1.0", c.Q)
		}
		u.Q = int(math.Round(c.Q * 1000))
	}

	// §10.3 step 6: the contact's expires parameter, else the Expires
	// header, else the local default.
	var secs int64
	switch {
	case c.HasExpires:
		if c.Expires < 0 {
			return u, invalid("expires", "negative (%d)", c.Expires)
		}
		secs = c.Expires
	case req.HasExpires:
		secs = req.Expires
	default:
		secs = int64(lim.DefaultExpires / time.Second)
	}
	minSecs := int64(lim.MinExpires / time.Second)
	switch {
	case secs == 0:
	case secs < minSecs:
		// RFC 3261 §10.3 allows 423 only below one hour, which
		// Limits.Validate guarantees for every minimum.
		return u, &Error{Kind: KindIntervalTooBrief, Field: "expires",
			Reason: fmt.Sprintf("%d s is below the minimum of %d s", secs, minSecs), MinExpires: int(minSecs)}
	case secs > int64(lim.MaxExpires/time.Second):
		secs = int64(lim.MaxExpires / time.Second)
	}
	if secs > 0 && lim.ExpiresJitter > 0 {
		secs = max(minSecs, secs-jitter(req, c, secs*int64(lim.ExpiresJitter)/100))
	}
	u.Expires = time.Duration(secs) * time.Second
	return u, nil
}

// jitter draws how much of a contact's expiry to take off, in [0, spread].
// The draw is a hash of the request (Call-ID, CSeq) and the contact, not
// a random number: Check stays a function of its input, a retransmission
// is granted what the first copy was, and each refresh of a phone (a new
// CSeq) still lands somewhere new.
func jitter(req Request, c Contact, spread int64) int64 {
	if spread <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(req.CallID))
	var cseq [4]byte
	binary.BigEndian.PutUint32(cseq[:], req.CSeq)
	h.Write(cseq[:])
	h.Write([]byte(c.URI))
	return int64(h.Sum64() % uint64(spread+1))
}

func checkLen(field, v string, limit int, name string) error {
	if len(v) > limit {
		e := invalid(field, "%d bytes, at most %d allowed", len(v), limit)
		e.Limit = name
		return e
	}
	return nil
}

// checkText is checkLen for free text, which must also be UTF-8: the stored
// encoding (protobuf strings) cannot hold anything else, so a request that
// passed Check would otherwise fail only when written.
func checkText(field, v string, limit int) error {
	if err := checkLen(field, v, limit, LimitFieldLength); err != nil {
		return err
	}
	if !utf8.ValidString(v) {
		return invalid(field, "not valid UTF-8")
	}
	return nil
}

// checkReceived accepts "host:port" or a SIP URI naming the source.
func checkReceived(v string, lim Limits) error {
	if err := checkText("received", v, lim.MaxFieldLen); err != nil {
		return err
	}
	if strings.HasPrefix(v, "sip:") || strings.HasPrefix(v, "sips:") {
		if _, err := sipuri.Parse(v); err != nil {
			return invalid("received", "%v", err)
		}
		return nil
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return invalid("received", "want host:port: %v", err)
	}
	if p, err := strconv.Atoi(port); err != nil || !sipuri.AllDigits(port) || p < 1 || p > 65535 {
		return invalid("received", "invalid port %q", port)
	}
	if host == "" {
		return invalid("received", "missing host")
	}
	if _, err := netip.ParseAddr(host); err != nil {
		for i := 0; i < len(host); i++ {
			if c := host[i]; !(sipuri.IsAlnum(c) || c == '-' || c == '.') {
				return invalid("received", "invalid character %q in host", c)
			}
		}
	}
	return nil
}

// Apply performs a checked REGISTER on the bindings stored for its AoR
// (RFC 3261 §10.3 steps 5 to 8) and returns the set to store. It is all or
// nothing: on error the caller stores nothing. node names the accepting
// node; now is the registrar's clock.
func Apply(cur BindingSet, r Registration, now time.Time, lim Limits, node string) (BindingSet, error) {
	base := Compact(cur, now)
	base.AoR = r.AoR
	if r.IsQuery() {
		return base, nil
	}
	ver := nextVersion(base, now)
	// A copy to edit: base may be cur itself (see BindingSet), and cur may
	// be shared with other readers.
	out := BindingSet{AoR: r.AoR, Bindings: cloneFor(base, r)}

	if r.Wildcard {
		for _, b := range base.Bindings {
			if !b.Live(now) {
				continue
			}
			if err := checkOrder(&b, r); err != nil {
				return cur, err
			}
			i, _ := out.find(b.ID)
			out.Bindings[i] = tombstone(b, r, ver, lim, node)
		}
		return out, nil
	}

	for _, c := range r.Contacts {
		var prev Binding
		if i, ok := base.find(c.ID); ok {
			prev = base.Bindings[i]
			if err := checkOrder(&prev, r); err != nil {
				return cur, err
			}
		}
		var b Binding
		if c.Expires == 0 {
			// A tombstone even when nothing is stored here: a replica we
			// could not read may still hold the binding.
			b = tombstone(Binding{ID: c.ID, URI: c.URI, Instance: c.Instance, RegID: c.RegID}, r, ver, lim, node)
		} else {
			b = Binding{
				ID: c.ID, URI: c.URI, Expires: ceilSecond(now.Add(c.Expires)), Updated: ver, Q: c.Q,
				CallID: r.CallID, CSeq: r.CSeq, Path: r.Path, Received: r.Received,
				Transport: r.Transport, Instance: c.Instance, RegID: c.RegID,
				UserAgent: r.UserAgent, Node: node, Retain: retention(ver, lim),
			}
		}
		if i, ok := out.find(c.ID); ok {
			out.Bindings[i] = b
		} else {
			out.Bindings = slices.Insert(out.Bindings, i, b)
		}
	}

	if n := countLive(out.Bindings, now); n > lim.MaxContacts {
		return cur, &Error{Kind: KindTooManyContacts, Field: "contacts",
			Reason: fmt.Sprintf("the AoR would have %d contacts, at most %d allowed", n, lim.MaxContacts), Limit: LimitContacts}
	}
	return out, nil
}

// cloneFor copies base's bindings with room for the ones r adds, so that
// inserting them does not copy the lot again.
func cloneFor(base BindingSet, r Registration) []Binding {
	added := 0
	for _, c := range r.Contacts {
		if _, ok := base.find(c.ID); !ok {
			added++
		}
	}
	if len(base.Bindings)+added == 0 {
		return nil
	}
	return append(make([]Binding, 0, len(base.Bindings)+added), base.Bindings...)
}

// checkOrder is RFC 3261 §10.3 steps 5 and 7: a request from the same
// Call-ID must carry a higher CSeq than the one that last wrote the binding,
// or it is out of order (or a retransmission) and must fail. Tombstones take
// part, so a delayed REGISTER cannot bring back a contact removed after it.
func checkOrder(prev *Binding, r Registration) error {
	if prev.CallID == r.CallID && r.CSeq <= prev.CSeq {
		return &Error{Kind: KindOutOfOrder, Field: "cseq",
			Reason: fmt.Sprintf("CSeq %d is not higher than %d stored for this Call-ID", r.CSeq, prev.CSeq)}
	}
	return nil
}

// tombstone records the removal of b by node.
func tombstone(b Binding, r Registration, ver time.Time, lim Limits, node string) Binding {
	keep := retention(ver, lim)
	return Binding{
		ID: b.ID, URI: b.URI, Instance: b.Instance, RegID: b.RegID,
		Expires: keep, Updated: ver, Retain: keep,
		CallID: r.CallID, CSeq: r.CSeq, Node: node, Removed: true,
	}
}

// retention is how long an entry written at ver must be kept, live or
// not: until every write it supersedes has expired. Any such write was made
// before ver with an expiry at most MaxExpires after it, so ver+MaxExpires
// (plus a margin for nodes configured differently) outlives them all, and
// no stale replica can bring back a removed, shortened or lapsed binding
// through a merge.
func retention(ver time.Time, lim Limits) time.Time {
	return ceilSecond(ver.Add(lim.MaxExpires + tombstoneMargin))
}

const tombstoneMargin = time.Minute

// nextVersion is the write version for a change made after reading s: the
// clock, but never at or before anything already in s.
func nextVersion(s BindingSet, now time.Time) time.Time {
	v := time.Unix(0, now.UnixNano()) // no monotonic reading: versions travel
	for _, b := range s.Bindings {
		if !b.Updated.Before(v) {
			v = b.Updated.Add(time.Nanosecond)
		}
	}
	return v
}

// ceilSecond rounds up to the whole second, the resolution expiries are
// stored with, so a binding never lapses before the time it was granted.
func ceilSecond(t time.Time) time.Time {
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	return time.Unix(sec, 0)
}

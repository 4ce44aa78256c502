package locsvc

import (
	"slices"
	"time"
)

// BindingRef names one version of a binding: its ID (see BindingID) and
// the Updated stamp of the write that made it, as a Lookup returned them.
type BindingRef struct {
	ID      string
	Updated time.Time
}

// Unbind removes the bindings of cur that refs name, each only in the
// version the ref names, and reports how many it removed. It is how a SIP
// front end takes out a contact it knows to be unreachable (an RFC 5626
// flow whose connection closed, a NATed contact that stopped answering
// keepalives) without a REGISTER from the phone.
//
// A ref removes a binding only while it is live and its Updated equals the
// ref's: the caller judged that version unreachable, and a newer one (the
// phone registered again, perhaps over a new connection) says nothing about
// the old one's fate, so it is kept. A ref that names an absent, removed or
// lapsed binding, or another version, changes nothing; a ref given twice
// counts once. When nothing is removed, cur itself is returned.
//
// A removed binding becomes a tombstone, as for a REGISTER with expires 0:
// stamped with a version after everything in cur (see nextVersion), so it
// supersedes the version read on every replica it is merged with, and kept
// until retention, so a stale replica still holding that version cannot
// bring it back. node names the node that made the removal.
//
// Unlike the REGISTER's tombstone, this one keeps the Call-ID and CSeq of
// the binding it removes, because the removal is not a request of the
// phone's and must not move the phone's CSeq order (RFC 3261 §10.3 step
// 7, see checkOrder): the phone's next REGISTER of that Call-ID carries a
// higher CSeq and is accepted, while a delayed copy of the REGISTER that
// made the removed version (the same CSeq) is still refused, and cannot
// bring back the contact that was found unreachable.
//
// Like Apply, Unbind compacts cur before it looks, and never modifies cur.
//
// The match is checked against cur, the set the store read. A store whose
// change and write are not atomic (the replicated store reads a quorum,
// then writes) leaves a window in which a REGISTER of the same binding
// landing between the read and the write meets the tombstone in the merge;
// there, as between any two concurrent writes, the later version wins.
func Unbind(cur BindingSet, refs []BindingRef, now time.Time, lim Limits, node string) (next BindingSet, removed int) {
	base := Compact(cur, now)
	var out BindingSet
	var ver time.Time
	for _, ref := range refs {
		// Look in the copy once there is one, so a repeated ref finds the
		// tombstone the first one left rather than the binding again.
		in := base
		if removed > 0 {
			in = out
		}
		i, ok := in.find(ref.ID)
		if !ok {
			continue
		}
		if b := &in.Bindings[i]; !b.Live(now) || !b.Updated.Equal(ref.Updated) {
			continue
		}
		if removed == 0 {
			// A copy to edit: base may be cur itself (see BindingSet).
			// One version for the whole call, as one REGISTER has.
			out = BindingSet{AoR: base.AoR, Bindings: slices.Clone(base.Bindings)}
			ver = nextVersion(base, now)
		}
		b := out.Bindings[i]
		out.Bindings[i] = tombstone(b, Registration{CallID: b.CallID, CSeq: b.CSeq}, ver, lim, node)
		removed++
	}
	if removed == 0 {
		return cur, 0
	}
	return out, removed
}

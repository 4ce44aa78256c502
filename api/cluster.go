package api

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/locsvc/ringstore"
	"github.com/locsvc/locsvc/ring"
)

// Membership is what Status needs from gossip membership.
type Membership interface {
	Ring() *ring.Ring
	Members() []ring.Member
}

// RingStatus reports a node of the memcached ring.
type RingStatus struct {
	Members  Membership
	Store    *ringstore.Store
	Repairer *ringstore.Repairer
}

// Status implements StatusSource.
func (rs RingStatus) Status(_ context.Context, out *locsvcv1.StatusResponse) {
	out.Store = "memcached"
	out.Replicas = uint32(rs.Store.Replicas())
	for _, m := range rs.Members.Members() {
		out.Members = append(out.Members, &locsvcv1.Member{
			NodeId: m.NodeID, GossipAddr: m.GossipAddr, GrpcAddr: m.GRPC, HttpAddr: m.HTTP, SipAddr: m.SIP,
			Zone: m.Zone, State: m.State.String(), Alive: m.Alive,
		})
	}
	r := rs.Members.Ring()
	own := r.Ownership(int(out.Replicas))
	for _, s := range r.Shards() {
		out.Shards = append(out.Shards, &locsvcv1.Shard{
			Id: s.ID, Addr: s.Addr, NodeId: s.Node, Zone: s.Zone, Healthy: s.Healthy, Ownership: own[s.ID],
		})
	}
	out.Repair = &locsvcv1.Repair{}
	if rep := rs.Repairer; rep != nil {
		st := rep.Stats()
		out.Repair = &locsvcv1.Repair{
			Running: st.Running, Passes: st.Passes, KeysScanned: st.Scanned,
			KeysCopied: st.Copied, Failures: st.Failures,
		}
		if t := rep.LastPass(); !t.IsZero() {
			out.Repair.LastPassAt = timestamppb.New(t)
		}
	}
}

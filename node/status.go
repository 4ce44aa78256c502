package node

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/locsvc/locsvc/api/locsvcv1"
)

// Status fills the cluster part of a Status answer (api.StatusSource):
// the members as gossip sees them, the ring's shards with their share of
// the keys, and repair's progress.
func (c *cluster) Status(_ context.Context, out *locsvcv1.StatusResponse) {
	out.Store = "memcached"
	out.Replicas = uint32(c.store.Replicas())
	for _, m := range c.mship.Members() {
		out.Members = append(out.Members, &locsvcv1.Member{
			NodeId: m.NodeID, GossipAddr: m.GossipAddr, GrpcAddr: m.GRPC, HttpAddr: m.HTTP, SipAddr: m.SIP,
			Zone: m.Zone, State: m.State.String(), Alive: m.Alive,
		})
	}
	r := c.mship.Ring()
	own := r.Ownership(int(out.Replicas))
	for _, s := range r.Shards() {
		out.Shards = append(out.Shards, &locsvcv1.Shard{
			Id: s.ID, Addr: s.Addr, NodeId: s.Node, Zone: s.Zone, Healthy: s.Healthy, Ownership: own[s.ID],
		})
	}
	st := c.rep.Stats()
	out.Repair = &locsvcv1.Repair{
		Running: st.Running, Passes: st.Passes, KeysScanned: st.Scanned, KeysCopied: st.Copied, Failures: st.Failures,
	}
	if t := c.rep.LastPass(); !t.IsZero() {
		out.Repair.LastPassAt = timestamppb.New(t)
	}
}

// Status is the node's Status answer, as gRPC and HTTP serve it (nil with
// Locator: a SIP front end for a remote cluster has none of its own).
func (n *Node) Status(ctx context.Context) (*locsvcv1.StatusResponse, error) {
	if n.api == nil {
		return nil, nil
	}
	return n.api.Status(ctx, &locsvcv1.StatusRequest{})
}

package ring

import "strconv"

// State is a node's lifecycle state as it announces it. The values are on
// the wire (meta.go): new states are appended, never renumbered.
type State uint8

const (
	// StateJoining: the node is up and its shards take part in placement,
	// but it may still be filling them (repair); callers decide what that
	// means for reads.
	StateJoining State = iota
	// StateActive: fully serving.
	StateActive
	// StateLeaving: leaving the cluster for good (drain, --leave-on-stop).
	// Its shards stay in the ring marked unhealthy, so ReplicaSet already
	// routes around them (the keys move once, now, not again when the node
	// is gone) while Preference still names them as the keys' old homes
	// for the hand-off.
	StateLeaving
	// StateRestarting: stopping to come back (SIGTERM by default). The
	// node's shards stay in the ring as they were, and stay there after it
	// leaves gossip, for the RestartGrace it announces: its memcached
	// usually keeps running and every node dials it directly, so nothing
	// needs to move. A node that is not back by then is treated as failed
	// (see presence). Nodes that predate this state see an unknown state
	// and drop the shards, as for a crash.
	StateRestarting
)

func (s State) String() string {
	switch s {
	case StateJoining:
		return "joining"
	case StateActive:
		return "active"
	case StateLeaving:
		return "leaving"
	case StateRestarting:
		return "restarting"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

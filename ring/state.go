package ring

import "strconv"

// State is a node's lifecycle state as it announces it.
type State uint8

const (
	// StateJoining: the node is up and its shards take part in placement,
	// but it may still be filling them (repair); callers decide what that
	// means for reads.
	StateJoining State = iota
	// StateActive: fully serving.
	StateActive
	// StateLeaving: shutting down. Its shards stay in the ring marked
	// unhealthy, so ReplicaSet already routes around them (the keys move
	// once, now, not again when the node is gone) while Preference still
	// names them as the keys' old homes for repair.
	StateLeaving
)

func (s State) String() string {
	switch s {
	case StateJoining:
		return "joining"
	case StateActive:
		return "active"
	case StateLeaving:
		return "leaving"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

package ring

// Shard is one memcached server as the ring sees it.
type Shard struct {
	ID      string // stable identity; in practice the memcached address "host:port"
	Addr    string // memcached address to dial
	Node    string // node id of the locsvc node that fronts (announces) it
	Zone    string // failure zone; "" when zones are not used
	Weight  int    // relative capacity; 0 (or less) means 1
	Healthy bool
	// Epoch identifies the running instance of the shard; it changes when
	// the shard restarts, which makes a new snapshot and so a repair pass.
	Epoch uint64
}

// weight is the effective weight: a zero value must not make a shard vanish
// from the ring, so anything below 1 counts as 1.
func (s Shard) weight() int {
	if s.Weight < 1 {
		return 1
	}
	return s.Weight
}

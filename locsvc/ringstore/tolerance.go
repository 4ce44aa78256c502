package ringstore

// tolerance is how a fan-out's outcome follows from its calls: it aims
// for want successful calls, falling over past failed shards to reach
// them, and succeeds once need have succeeded.
//
// want and need differ on purpose. A write goes to all R replicas even
// after W acknowledged, so that replicas stay in step; a read asks all R
// so that their answers can be merged and the stale ones repaired, though
// one answer is enough.
type tolerance struct {
	want int // successful calls to aim for
	need int // successful calls that make the fan-out succeed
}

// readTolerance: every replica asked, one answer suffices.
func readTolerance(replicas int) tolerance {
	return tolerance{want: replicas, need: 1}
}

// writeTolerance: every replica written, quorum acknowledgements needed.
func writeTolerance(replicas, quorum int) tolerance {
	return tolerance{want: replicas, need: quorum}
}

// writeQuorum is W: configured, or else a majority of R where R cannot
// exceed the shards the ring has, so that a one-shard ring still takes
// writes.
func writeQuorum(configured, replicas, ringLen int) int {
	if configured > 0 {
		return configured
	}
	return min(replicas, ringLen)/2 + 1
}

// verdict is a fan-out's outcome, as far as it is known.
type verdict uint8

const (
	undecided verdict = iota // more results are needed
	succeeded                // need calls succeeded
	failed                   // need calls can no longer succeed
)

// decide judges a fan-out with ok successful calls, pending calls in
// flight and at most untried calls still to be made. untried must not
// undercount: a failed verdict cancels the calls in flight.
func (t tolerance) decide(ok, pending, untried int) verdict {
	switch {
	case ok >= t.need:
		return succeeded
	case ok+pending+untried < t.need:
		return failed
	}
	return undecided
}

// replace reports whether a failed call should be replaced by one to the
// next shard: only while the calls that succeeded or may still succeed
// fall short of want.
func (t tolerance) replace(ok, pending int) bool {
	return ok+pending < t.want
}

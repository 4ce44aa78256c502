package node

// TEMPORARY until ringstore's value snapshots land.

import "github.com/locsvc/locsvc/locsvc/ringstore"

type storeCounts struct {
	Reads, Writes, ReadFailures, WriteFailures, ReplicaErrors, Failovers, ReadRepairs, ReadRepairsDropped, CASConflicts, CorruptValues uint64
}

func snapStore(s *ringstore.Store) storeCounts {
	st := s.Stats()
	return storeCounts{st.Reads.Load(), st.Writes.Load(), st.ReadFailures.Load(), st.WriteFailures.Load(), st.ReplicaErrors.Load(),
		st.Failovers.Load(), st.ReadRepairs.Load(), st.ReadRepairsDropped.Load(), st.CASConflicts.Load(), st.CorruptValues.Load()}
}

type repairCounts struct {
	Running                           bool
	Passes, Scanned, Copied, Failures uint64
}

func snapRepair(r *ringstore.Repairer) repairCounts {
	st := r.Stats()
	return repairCounts{st.Running.Load(), st.Passes.Load(), st.Scanned.Load(), st.Copied.Load(), st.Failures.Load()}
}

package ring

import (
	"log/slog"
	"time"
)

const (
	rejoinMin = time.Second
	rejoinMax = 30 * time.Second
)

// rejoinLoop retries the seeds whenever this node sees no other alive member:
// seeds that were not up yet when this node started, or a cluster that
// disappeared (partition, every peer restarted). memberlist alone would never
// contact a dead node again after GossipToTheDeadTime.
func (m *Membership) rejoinLoop(seeds []string) {
	defer m.wg.Done()
	wait := rejoinMin
	for {
		select {
		case <-m.stop:
			return
		case <-time.After(wait):
		}
		if m.ml.NumMembers() > 1 {
			wait = rejoinMin
			continue
		}
		if n, err := m.ml.Join(seeds); err != nil {
			m.stats.joinFailures.Add(1)
			m.log.Debug("ring: rejoin failed", slog.Any("err", err))
			wait = min(2*wait, rejoinMax)
		} else {
			m.log.Info("ring: joined", slog.Int("seeds_reached", n))
			wait = rejoinMin
		}
	}
}

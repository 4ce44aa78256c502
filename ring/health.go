package ring

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

func (m *Membership) healthLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			if m.checkHealth() {
				m.wakeBuilder()
				m.announce(announceTimeout)
			}
		}
	}
}

// checkHealth runs HealthCheck on every own shard in parallel (one hung
// memcached must not delay the verdict on the others) and records the
// results; it reports whether any shard's health changed.
func (m *Membership) checkHealth() bool {
	m.metaMu.Lock()
	addrs := make([]string, len(m.meta.Shards))
	for i, s := range m.meta.Shards {
		addrs[i] = s.Addr
	}
	m.metaMu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.HealthInterval)
	defer cancel()
	go func() { // a check should not outlive Close by a whole interval
		select {
		case <-m.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	healthy := make([]bool, len(addrs))
	epochs := make([]uint64, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() {
			epoch, err := m.cfg.HealthCheck(ctx, addr)
			healthy[i], epochs[i] = err == nil, epoch
			if err != nil {
				m.log.Debug("ring: shard health check failed", slog.String("shard", addr), slog.Any("err", err))
			}
		})
	}
	wg.Wait()
	m.stats.healthChecks.Add(uint64(len(addrs)))
	if m.closed() {
		return false // results of checks cut short by Close mean nothing
	}

	m.metaMu.Lock()
	defer m.metaMu.Unlock()
	meta := m.meta
	meta.Shards = append([]ShardStatus(nil), meta.Shards...)
	changed := false
	for i, s := range meta.Shards {
		// The shard list does not change after Start, but match by address
		// anyway rather than trust the index.
		if i >= len(addrs) || s.Addr != addrs[i] {
			continue
		}
		if s.Healthy != healthy[i] {
			meta.Shards[i].Healthy = healthy[i]
			changed = true
			m.stats.healthChanges.Add(1)
			m.log.Info("ring: shard health changed", slog.String("shard", s.Addr), slog.Bool("healthy", healthy[i]))
		}
		if epochs[i] != 0 && s.Epoch != epochs[i] {
			if s.Epoch != 0 {
				m.log.Info("ring: shard restarted", slog.String("shard", s.Addr))
			}
			meta.Shards[i].Epoch = epochs[i]
			changed = true
		}
	}
	if !changed {
		return false
	}
	if err := m.setMetaLocked(meta); err != nil {
		m.log.Error("ring: cannot announce shard health", slog.Any("err", err))
		return false
	}
	return true
}

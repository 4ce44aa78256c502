package ring

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// checkContext bounds one round of checks by the interval, and by Close:
// a check should not outlive Close by a whole interval.
func (m *Membership) checkContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.HealthInterval)
	go func() {
		select {
		case <-m.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func (m *Membership) healthLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			own := m.checkHealth()
			away := m.checkAway()
			if own || away {
				m.wakeBuilder()
			}
			if own {
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

	ctx, cancel := m.checkContext()
	defer cancel()
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

// checkAway probes the shards of members that went away for a restart and
// whose shards are still placed (presenceOf). Their node is not there to
// report on them, yet they stay in every ring until it returns or its
// grace ends: if the memcached went down too (the whole machine
// restarted), every call would pay a failed attempt for the whole grace
// and the records' other copies would wait for it to end. So each peer
// probes them itself, as their node would: a shard found down is marked
// unhealthy, one found with a new epoch (it restarted, empty) takes that
// epoch; either changes the ring, and repair copies around it or into it
// as for the shard of a live node. Peers probe apart, so their rings may
// differ for an interval, as they may while a breaker is open: every
// write merges, so that is safe. It reports whether the ring's content
// changed.
func (m *Membership) checkAway() bool {
	type probe struct {
		node    string
		gone    time.Time // identifies the departure probed, should the node come back meanwhile
		i       int
		addr    string
		healthy bool
		epoch   uint64
	}
	now := time.Now()
	var probes []probe
	m.mu.Lock()
	for name, e := range m.members {
		if p, _ := e.presence(now); e.Alive || p != placed {
			continue
		}
		for i, s := range e.Shards {
			probes = append(probes, probe{node: name, gone: e.since, i: i, addr: s.Addr})
		}
	}
	m.mu.Unlock()
	if len(probes) == 0 {
		return false
	}

	ctx, cancel := m.checkContext()
	defer cancel()
	var wg sync.WaitGroup
	for i := range probes {
		wg.Go(func() {
			p := &probes[i]
			var err error
			p.epoch, err = m.cfg.HealthCheck(ctx, p.addr)
			p.healthy = err == nil
		})
	}
	wg.Wait()
	m.stats.healthChecks.Add(uint64(len(probes)))
	if m.closed() {
		return false
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	changed := false
	for _, p := range probes {
		e, ok := m.members[p.node]
		if !ok || e.Alive || !e.since.Equal(p.gone) || p.i >= len(e.Shards) {
			continue // it came back meanwhile: its own word counts again
		}
		if e.probed == nil {
			e.probed = slices.Clone(e.Shards)
		}
		s := &e.probed[p.i]
		if s.Healthy != p.healthy {
			s.Healthy = p.healthy
			changed = true
			m.stats.healthChanges.Add(1)
			m.log.Info("ring: shard of a node away for a restart changed health",
				slog.String("node", p.node), slog.String("shard", p.addr), slog.Bool("healthy", p.healthy))
		}
		if p.epoch != 0 && s.Epoch != p.epoch {
			s.Epoch = p.epoch
			changed = true
			m.log.Info("ring: shard of a node away for a restart restarted", slog.String("node", p.node), slog.String("shard", p.addr))
		}
		m.members[p.node] = e
	}
	return changed
}

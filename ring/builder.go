package ring

import "time"

func (m *Membership) wakeBuilder() {
	select {
	case m.wake <- struct{}{}:
	default: // a build is already pending and will see this change too
	}
}

// builder turns membership changes into snapshots off memberlist's
// goroutines, coalescing bursts (a join brings one event per member). It
// also rebuilds when a restarting member's grace ends, since no event
// marks that moment.
func (m *Membership) builder() {
	defer m.wg.Done()
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	var expiry <-chan time.Time
	for {
		select {
		case <-m.stop:
			return
		case <-m.wake:
		case <-expiry:
		case <-prune.C:
			m.pruneDead()
			continue
		}
		expiry = nil
		if next := m.rebuild(); !next.IsZero() {
			expiry = time.After(time.Until(next))
		}
	}
}

// rebuild makes the snapshot of now and publishes it if it differs from
// the current one. It returns when the next rebuild is due without any
// event (a grace ending), zero if none is.
func (m *Membership) rebuild() time.Time {
	m.buildMu.Lock()
	defer m.buildMu.Unlock()
	now := time.Now()
	shards, next := memberEntry{Member: m.localMember()}.shards(now)
	m.mu.Lock()
	for _, e := range m.members {
		s, until := e.shards(now)
		shards = append(shards, s...)
		if !until.IsZero() && (next.IsZero() || until.Before(next)) {
			next = until
		}
	}
	m.mu.Unlock()

	r := New(shards)
	m.stats.rebuilds.Add(1)
	if old := m.ring.Load(); old != nil && old.Equal(r) {
		return next
	}
	m.ring.Store(r)
	m.stats.ringChanges.Add(1)
	m.stats.lastChange.Store(time.Now().UnixNano())
	m.subs.publish(r)
	return next
}

// pruneDead forgets members gone for deadRetention, but never one whose
// shards are still placed (a restart grace longer than the retention).
func (m *Membership) pruneDead() {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, e := range m.members {
		if p, _ := e.presence(now); !e.Alive && p == absent && now.Sub(e.since) > deadRetention {
			delete(m.members, name)
		}
	}
}

package ring

import "time"

func (m *Membership) wakeBuilder() {
	select {
	case m.wake <- struct{}{}:
	default: // a build is already pending and will see this change too
	}
}

// builder turns membership changes into snapshots off memberlist's
// goroutines, coalescing bursts (a join brings one event per member).
func (m *Membership) builder() {
	defer m.wg.Done()
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-m.wake:
			m.rebuild()
		case <-prune.C:
			m.pruneDead()
		}
	}
}

func (m *Membership) rebuild() {
	m.buildMu.Lock()
	defer m.buildMu.Unlock()
	shards := m.localMember().shards()
	m.mu.Lock()
	for _, e := range m.members {
		shards = append(shards, e.shards()...)
	}
	m.mu.Unlock()

	r := New(shards)
	m.stats.rebuilds.Add(1)
	if old := m.ring.Load(); old != nil && old.Equal(r) {
		return
	}
	m.ring.Store(r)
	m.stats.ringChanges.Add(1)
	m.stats.lastChange.Store(time.Now().UnixNano())
	m.subs.publish(r)
}

func (m *Membership) pruneDead() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, e := range m.members {
		if !e.Alive && time.Since(e.since) > deadRetention {
			delete(m.members, name)
		}
	}
}

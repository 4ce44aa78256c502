package ring

import (
	"slices"
	"testing"
	"time"
)

func TestPresenceOf(t *testing.T) {
	gone := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	const grace = 2 * time.Minute
	for _, c := range []struct {
		name    string
		state   State
		alive   bool
		grace   time.Duration
		elapsed time.Duration // since it went away
		want    presence
		until   time.Duration // from gone; 0: no deadline
	}{
		{"joining", StateJoining, true, grace, 0, placed, 0},
		{"active", StateActive, true, grace, 0, placed, 0},
		{"restarting, still up", StateRestarting, true, grace, 0, placed, 0},
		{"leaving, still up: routed around", StateLeaving, true, grace, 0, departing, 0},
		{"unknown state", State(9), true, grace, 0, absent, 0},
		{"crashed while active", StateActive, false, grace, 0, absent, 0},
		{"crashed while joining", StateJoining, false, grace, time.Second, absent, 0},
		{"left for good", StateLeaving, false, grace, 0, absent, 0},
		{"away for a restart", StateRestarting, false, grace, 0, placed, grace},
		{"away for a restart, grace nearly over", StateRestarting, false, grace, grace - time.Millisecond, placed, grace},
		{"away for a restart, grace over", StateRestarting, false, grace, grace, absent, 0},
		{"away long past the grace", StateRestarting, false, grace, time.Hour, absent, 0},
		{"restart without grace: as a crash", StateRestarting, false, 0, 0, absent, 0},
		{"unknown state, gone", State(9), false, grace, 0, absent, 0},
	} {
		got, until := presenceOf(c.state, c.alive, c.grace, gone, gone.Add(c.elapsed))
		var wantUntil time.Time
		if c.until != 0 {
			wantUntil = gone.Add(c.until)
		}
		if got != c.want || !until.Equal(wantUntil) {
			t.Errorf("%s: presence %d until %v, want %d until %v", c.name, got, until, c.want, wantUntil)
		}
	}
}

func TestShardsOf(t *testing.T) {
	m := Member{Meta: Meta{NodeID: "n1", Zone: "z", Shards: []ShardStatus{
		{Addr: "a:1", Healthy: true, Weight: 2, Epoch: 7}, {Addr: "b:1", Healthy: false}}}}
	probed := []ShardStatus{{Addr: "a:1", Healthy: false, Weight: 2, Epoch: 8}, {Addr: "b:1", Healthy: true}}
	for _, c := range []struct {
		name    string
		p       presence
		list    []ShardStatus
		healthy []bool
		epochs  []uint64
	}{
		{"absent", absent, m.Shards, nil, nil},
		{"placed: as announced", placed, m.Shards, []bool{true, false}, []uint64{7, 0}},
		{"departing: all unhealthy", departing, m.Shards, []bool{false, false}, []uint64{7, 0}},
		{"placed, probed by peers", placed, probed, []bool{false, true}, []uint64{8, 0}},
	} {
		got := shardsOf(m, c.p, c.list)
		var healthy []bool
		var epochs []uint64
		for _, s := range got {
			if s.Node != "n1" || s.Zone != "z" || s.ID != s.Addr {
				t.Errorf("%s: %+v", c.name, s)
			}
			healthy, epochs = append(healthy, s.Healthy), append(epochs, s.Epoch)
		}
		if !slices.Equal(healthy, c.healthy) || !slices.Equal(epochs, c.epochs) {
			t.Errorf("%s: healthy %v epochs %v, want %v %v", c.name, healthy, epochs, c.healthy, c.epochs)
		}
	}
}

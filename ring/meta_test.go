package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range []Meta{
		{NodeID: "a"},
		{NodeID: "b", GRPC: "127.0.0.1:7070", HTTP: "127.0.0.1:8080", SIP: "127.0.0.1:5060", Zone: "eu-1", State: StateActive,
			Shards: []ShardStatus{{Addr: "127.0.0.1:11211", Healthy: true}, {Addr: "127.0.0.1:11212", Weight: 3}}},
		{NodeID: "c", State: StateLeaving, Shards: []ShardStatus{}},
		{NodeID: "d", State: StateRestarting, RestartGrace: 90 * time.Second,
			Shards: []ShardStatus{{Addr: "127.0.0.1:11211", Healthy: true, Epoch: 1 << 40}}},
	} {
		b, err := encodeMeta(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeMeta(m.NodeID, b)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Shards) == 0 {
			m.Shards = nil
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, m)
		}
		// A later version may append fields: they must be ignored.
		if got2, err := decodeMeta(m.NodeID, append(b, 9, 9, 9)); err != nil || !reflect.DeepEqual(got2, got) {
			t.Errorf("trailing bytes: %v, %+v", err, got2)
		}
		// Every truncation is an error, never a panic, except the one
		// that drops RestartGrace: that is the layout of older nodes.
		old := len(b) - len(binary.AppendUvarint(nil, uint64(m.RestartGrace/time.Millisecond)))
		for i := range b {
			got, err := decodeMeta("x", b[:i])
			switch {
			case i == old:
				if err != nil || got.RestartGrace != 0 || got.State != m.State || len(got.Shards) != len(m.Shards) {
					t.Errorf("older layout (%d bytes): %v, %+v", i, err, got)
				}
			case err == nil:
				t.Errorf("truncated to %d of %d bytes: no error", i, len(b))
			}
		}
	}
	if _, err := encodeMeta(Meta{RestartGrace: -time.Second}); err == nil {
		t.Error("negative restart grace encoded")
	}
	if _, err := decodeMeta("x", []byte{metaVersion + 1}); err == nil {
		t.Error("unknown version accepted")
	}
}

func TestMetaTooBig(t *testing.T) {
	m := Meta{NodeID: "n"}
	for i := range 40 {
		m.Shards = append(m.Shards, ShardStatus{Addr: fmt.Sprintf("memcached-%02d.example.internal:11211", i)})
	}
	if err := m.Validate(); !errors.Is(err, ErrMetaTooBig) {
		t.Fatalf("Validate: %v, want ErrMetaTooBig", err)
	}
	_, err := Start(Config{NodeID: "n", BindAddr: "127.0.0.1:0", Meta: m})
	if !errors.Is(err, ErrMetaTooBig) {
		t.Fatalf("Start: %v, want ErrMetaTooBig", err)
	}
	m.Shards = m.Shards[:10]
	if err := m.Validate(); err != nil {
		t.Fatalf("10 shards: %v", err)
	}
}

func FuzzDecodeMeta(f *testing.F) {
	b, _ := encodeMeta(Meta{GRPC: "g", Shards: []ShardStatus{{Addr: "a", Healthy: true, Weight: 2}}})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta("n", b)
		if err != nil {
			return
		}
		b2, err := encodeMeta(m)
		if err != nil {
			return // a decoded Meta may exceed the limit only if the input did
		}
		m2, err := decodeMeta("n", b2)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-encode changed %+v to %+v (%v)", m, m2, err)
		}
	})
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{StateJoining: "joining", StateActive: "active", StateLeaving: "leaving", StateRestarting: "restarting", 7: "state(7)"} {
		if s.String() != want {
			t.Errorf("%d: %q, want %q", s, s.String(), want)
		}
	}
}

func TestSubscribersCoalesce(t *testing.T) {
	var s subscribers
	ch, cancel := s.add(nil)
	rs := []*Ring{New(testShards(1)), New(testShards(2)), New(testShards(3))}
	for _, r := range rs {
		s.publish(r) // never blocks, nobody reading
	}
	if got := <-ch; got != rs[2] {
		t.Fatalf("got ring of %d shards, want the newest", got.Len())
	}
	select {
	case r := <-ch:
		t.Fatalf("stale snapshot %d left in channel", r.Len())
	default:
	}
	cancel()
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("channel not closed by cancel")
	}
	ch2, _ := s.add(rs[0])
	if got := <-ch2; got != rs[0] {
		t.Fatal("Subscribe does not start with the current snapshot")
	}
	s.closeAll()
	if _, ok := <-ch2; ok {
		t.Fatal("channel not closed by closeAll")
	}
}

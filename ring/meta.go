package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"
)

// Meta is what a node gossips about itself.
type Meta struct {
	NodeID          string
	GRPC, HTTP, SIP string // advertised addresses ("" when not served)
	Zone            string
	State           State
	Shards          []ShardStatus // memcached shards this node fronts (may be empty: a pure router)
	// RestartGrace is how long peers keep this node's shards in placement
	// after it went away in StateRestarting. The node announces it, rather
	// than each peer using its own setting, so that every peer drops the
	// shards at the same moment and the rings stay alike.
	RestartGrace time.Duration
}

// ShardStatus is one fronted memcached shard as its node last saw it.
type ShardStatus struct {
	Addr    string
	Healthy bool
	Weight  int    // relative capacity; 0 means 1
	Epoch   uint64 // identifies the running instance (see Config.HealthCheck)
}

// The wire form is compact because memberlist caps node metadata at
// MetaMaxSize (512) bytes and resends it with every alive message:
//
//	version byte (metaVersion)
//	GRPC, HTTP, SIP, Zone: uvarint length + bytes each
//	State: one byte
//	shard count: uvarint; per shard: Addr (uvarint length + bytes),
//	flags byte (bit 0 healthy), Weight uvarint, Epoch uvarint
//	RestartGrace: uvarint milliseconds (appended later: absent means 0)
//
// NodeID is not encoded: memberlist already carries it as the node name.
// Decoders ignore bytes after the fields they know, so a later version can
// append fields and still be read by this one; metaVersion changes only for
// an incompatible layout.
const metaVersion = 1

// ErrMetaTooBig is returned when a Meta does not fit memberlist's limit.
var ErrMetaTooBig = errors.New("ring: node metadata exceeds memberlist's 512-byte limit")

// Validate reports whether m can be gossiped, so a caller can reject a
// configuration (too many or too long addresses) before starting.
func (m Meta) Validate() error {
	_, err := encodeMeta(m)
	return err
}

func encodeMeta(m Meta) ([]byte, error) {
	b := make([]byte, 0, 128)
	b = append(b, metaVersion)
	for _, s := range []string{m.GRPC, m.HTTP, m.SIP, m.Zone} {
		b = appendString(b, s)
	}
	b = append(b, byte(m.State))
	b = binary.AppendUvarint(b, uint64(len(m.Shards)))
	for _, s := range m.Shards {
		if s.Weight < 0 {
			return nil, fmt.Errorf("ring: shard %s: negative weight %d", s.Addr, s.Weight)
		}
		b = appendString(b, s.Addr)
		var flags byte
		if s.Healthy {
			flags |= 1
		}
		b = append(b, flags)
		b = binary.AppendUvarint(b, uint64(s.Weight))
		b = binary.AppendUvarint(b, s.Epoch)
	}
	if m.RestartGrace < 0 || m.RestartGrace > MaxRestartGrace {
		return nil, fmt.Errorf("ring: restart grace %v is not between 0 and %v", m.RestartGrace, MaxRestartGrace)
	}
	b = binary.AppendUvarint(b, uint64(m.RestartGrace/time.Millisecond))
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("%w: %d bytes with %d shards", ErrMetaTooBig, len(b), len(m.Shards))
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// MaxRestartGrace bounds RestartGrace, so that a corrupt value cannot keep
// a gone node's shards in placement for ever.
const MaxRestartGrace = 24 * time.Hour

var errMetaCorrupt = errors.New("ring: corrupt node metadata")

// decodeMeta parses what encodeMeta wrote; nodeID comes from memberlist.
func decodeMeta(nodeID string, b []byte) (Meta, error) {
	m := Meta{NodeID: nodeID}
	if len(b) == 0 {
		return m, errMetaCorrupt
	}
	if b[0] != metaVersion {
		return m, fmt.Errorf("ring: node metadata version %d, want %d", b[0], metaVersion)
	}
	d := decoder{b: b[1:]}
	m.GRPC, m.HTTP, m.SIP, m.Zone = d.string(), d.string(), d.string(), d.string()
	m.State = State(d.byte())
	n := d.uvarint()
	if n > uint64(len(d.b)) { // each shard takes at least one byte
		return m, errMetaCorrupt
	}
	for range n {
		s := ShardStatus{Addr: d.string()}
		s.Healthy = d.byte()&1 == 1
		s.Weight = int(min(d.uvarint(), 1<<20))
		s.Epoch = d.uvarint()
		m.Shards = append(m.Shards, s)
	}
	if len(d.b) > 0 && !d.err { // absent in metadata of older nodes
		ms := min(d.uvarint(), uint64(MaxRestartGrace/time.Millisecond))
		m.RestartGrace = time.Duration(ms) * time.Millisecond
	}
	if d.err {
		return Meta{NodeID: nodeID}, errMetaCorrupt
	}
	return m, nil
}

// decoder reads until the first error and then returns zero values, so the
// parse above stays linear and checks once.
type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err, d.b = true, nil
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

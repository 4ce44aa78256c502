package locsvc

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/locsvc/locsvc/locsvc/internal/recordpb"
)

func TestCodecRoundTrip(t *testing.T) {
	flowID, _ := BindingID(cB, inst1, 2)
	s := BindingSet{AoR: testAoR, Bindings: []Binding{
		{
			ID: flowID, URI: cB, Expires: at(time.Hour), Updated: t0.Add(123456789), Q: 700,
			CallID: "a84b4c76e66710@pc33.example.com", CSeq: 314159,
			Path:     []string{"sip:edge1.example;lr", "sip:edge2.example;lr;ob"},
			Received: "198.51.100.1:5060", Transport: "tcp", Instance: inst1, RegID: 2,
			UserAgent: "Téléphone/1.0", Node: "node-1",
		},
		{
			ID: mustID(t, cA), URI: cA, Expires: at(2 * time.Hour), Updated: t0, CallID: "c", CSeq: 2,
			Node: "node-2", Removed: true,
		},
	}}
	if s.Bindings[0].ID > s.Bindings[1].ID {
		s.Bindings[0], s.Bindings[1] = s.Bindings[1], s.Bindings[0]
	}
	for _, set := range []BindingSet{s, {}, {AoR: testAoR}} {
		data, err := Encode(set)
		if err != nil {
			t.Fatal(err)
		}
		if data[0] != formatV1 {
			t.Errorf("format byte %d", data[0])
		}
		got, err := Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		if d := setDiff(got, set); d != "" {
			t.Errorf("round trip: %s", d)
		}
		again, _ := Encode(got)
		if string(again) != string(data) {
			t.Errorf("encoding not deterministic")
		}
	}
}

func TestCodecExpiresSecondResolution(t *testing.T) {
	// Expiries are stored in whole seconds; the registrar rounds them up
	// before storing, so nothing is lost there.
	s := BindingSet{AoR: testAoR, Bindings: []Binding{{ID: mustID(t, cA), URI: cA, Expires: t0.Add(1500 * time.Millisecond), Updated: t0}}}
	data, _ := Encode(s)
	got, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Bindings[0].Expires.Equal(t0.Add(time.Second)) || !got.Bindings[0].Updated.Equal(t0) {
		t.Errorf("times: %v %v", got.Bindings[0].Expires, got.Bindings[0].Updated)
	}
}

func TestCodecCorrupt(t *testing.T) {
	valid, err := Encode(BindingSet{AoR: testAoR, Bindings: []Binding{{ID: mustID(t, cA), URI: cA, Expires: at(time.Hour), Updated: t0}}})
	if err != nil {
		t.Fatal(err)
	}
	pb := func(bs ...*recordpb.StoredBinding) []byte {
		body, err := proto.Marshal(&recordpb.BindingSet{Aor: testAoR, Bindings: bs})
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte{formatV1}, body...)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"unknown format 0", append([]byte{0}, valid[1:]...)},
		{"unknown format 2", append([]byte{2}, valid[1:]...)},
		{"text", []byte("VALUE lsv1:abc 0 5\r\nhello")},
		{"garbage", []byte{formatV1, 0xff, 0xff, 0xff, 0xff}},
		{"truncated", valid[:len(valid)-3]},
		{"bad contact URI", pb(&recordpb.StoredBinding{Uri: "not a uri", Expires: 1})},
		{"empty contact URI", pb(&recordpb.StoredBinding{})},
		{"q out of range", pb(&recordpb.StoredBinding{Uri: cA, Q: 1001})},
		{"invalid UTF-8", append([]byte{formatV1, 0x0a, 0x02}, 0xff, 0xfe)},
	}
	for _, tt := range tests {
		got, err := Decode(tt.data)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", tt.name, err)
		}
		if got.AoR != "" || len(got.Bindings) != 0 {
			t.Errorf("%s: partial result %+v", tt.name, got)
		}
	}
	if _, err := Decode(valid); err != nil {
		t.Errorf("valid: %v", err)
	}
}

// Two stored entries for one binding (written by older code, or URIs that
// compare equal) resolve as Merge would, whatever their order.
func TestCodecDuplicateIDs(t *testing.T) {
	older := &recordpb.StoredBinding{Uri: "sip:alice@HOST.example;lr", Expires: t0.Unix() + 3600, Updated: t0.UnixNano(), Q: 1000, CallId: "c1", Cseq: 1}
	newer := &recordpb.StoredBinding{Uri: "sip:alice@host.example", Expires: t0.Unix() + 60, Updated: t0.UnixNano() + 1, Q: 500, CallId: "c1", Cseq: 2}
	removal := &recordpb.StoredBinding{Uri: "sip:alice@host.example;ob", Expires: t0.Unix() + 7200, Updated: t0.UnixNano() + 1, CallId: "c1", Cseq: 2, Removed: true}
	other := &recordpb.StoredBinding{Uri: "sip:alice@other.example", Expires: t0.Unix() + 60, Updated: t0.UnixNano()}
	enc := func(bs ...*recordpb.StoredBinding) []byte {
		body, err := proto.Marshal(&recordpb.BindingSet{Aor: testAoR, Bindings: bs})
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte{formatV1}, body...)
	}
	tests := []struct {
		name    string
		order   [][]*recordpb.StoredBinding
		wantURI string
		removed bool
	}{
		{"newer update wins", [][]*recordpb.StoredBinding{{older, newer, other}, {newer, other, older}, {other, older, newer}}, "sip:alice@host.example", false},
		{"removal wins a tie", [][]*recordpb.StoredBinding{{older, newer, removal}, {removal, newer, older}, {newer, removal}}, "sip:alice@host.example;ob", true},
	}
	for _, tt := range tests {
		for _, bs := range tt.order {
			s, err := Decode(enc(bs...))
			if err != nil {
				t.Fatal(err)
			}
			checkWellFormed(t, s)
			id := mustID(t, "sip:alice@host.example")
			i, ok := s.find(id)
			if !ok || s.Bindings[i].URI != tt.wantURI || s.Bindings[i].Removed != tt.removed {
				t.Errorf("%s: got %s", tt.name, dumpSet(s))
			}
			// Same as merging the entries one at a time.
			var m BindingSet
			for _, b := range bs {
				one, err := Decode(enc(b))
				if err != nil {
					t.Fatal(err)
				}
				m = Merge(m, one)
			}
			if d := setDiff(s, m); d != "" {
				t.Errorf("%s: decode differs from merge: %s", tt.name, d)
			}
		}
	}
}

func TestCodecSize(t *testing.T) {
	lim := testLimits()
	req := Request{
		AoR:       "sip:alice@example.com",
		Contacts:  []Contact{{URI: "sip:alice@192.0.2.10:5060;transport=udp"}},
		CallID:    "f81d4fae-7dec-11d0-a765-00a0c91e6bf6", // 36 chars
		CSeq:      1,
		Received:  "192.0.2.10:5060",
		Transport: "udp",
		UserAgent: "Example-Phone/1.2.34", // 20 chars
	}
	if len(req.CallID) != 36 || len(req.UserAgent) != 20 {
		t.Fatalf("fixture sizes: %d, %d", len(req.CallID), len(req.UserAgent))
	}
	reg, err := Check(req, lim)
	if err != nil {
		t.Fatal(err)
	}
	set, err := Apply(BindingSet{}, reg, t0.Add(123456789), lim, "locsvc-1")
	if err != nil {
		t.Fatal(err)
	}
	data, err := Encode(set)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a single-contact registration encodes to %d bytes", len(data))
	if len(data) > 300 {
		t.Errorf("encoding is %d bytes, want <= 300", len(data))
	}
}

// TestCodecCanonical: Encode writes the deterministic protobuf encoding,
// byte for byte, so that replicas written by any version compare equal.
func TestCodecCanonical(t *testing.T) {
	g := newGen(8)
	for range 1000 {
		data, err := Encode(g.set())
		if err != nil {
			t.Fatal(err)
		}
		var pb recordpb.BindingSet
		if err := proto.Unmarshal(data[1:], &pb); err != nil {
			t.Fatal(err)
		}
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(&pb)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data[1:], want) || len(data) != cap(data) {
			t.Fatalf("Encode wrote %x (cap %d), want %x", data[1:], cap(data), want)
		}
	}
}

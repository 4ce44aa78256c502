package gruu

import (
	"strings"
	"testing"
)

var secret = []byte("a farm's shared secret, 32 bytes")

var alice = Temp{AoR: "sip:alice@example.com", Instance: "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>",
	CallID: CallIDHash("a84b4c76e66710@pc33")}

func TestSealOpen(t *testing.T) {
	s := NewSealer(secret)
	for _, in := range []Temp{alice, {AoR: "sip:b@x", Instance: "", CallID: 0}, {AoR: "", Instance: "i", CallID: ^uint64(0)}} {
		tok := s.Seal(in)
		if !strings.HasPrefix(tok, Prefix) {
			t.Errorf("%q lacks the prefix", tok)
		}
		got, err := s.Open(tok)
		if err != nil || got != in {
			t.Errorf("%+v: opens to %+v, %v", in, got, err)
		}
	}
}

// Each registration gets a new temp-gruu, and none shows the AoR.
func TestFreshAndOpaque(t *testing.T) {
	s := NewSealer(secret)
	a, b := s.Seal(alice), s.Seal(alice)
	if a == b {
		t.Error("two seals of the same registration are equal")
	}
	if strings.Contains(a, "alice") || strings.Contains(a, "example") {
		t.Errorf("%q shows the AoR", a)
	}
}

func TestForgedRefused(t *testing.T) {
	s := NewSealer(secret)
	tok := s.Seal(alice)
	for i := len(Prefix); i < len(tok); i++ {
		b := []byte(tok)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		if got, err := s.Open(string(b)); err == nil {
			t.Fatalf("changed at %d, opens to %+v", i, got)
		}
	}
	if _, err := NewSealer([]byte("another farm's secret, 32 bytes!")).Open(tok); err != ErrInvalid {
		t.Errorf("other key: %v", err)
	}
	for _, bad := range []string{"", Prefix, tok[len(Prefix):], Prefix + "AAAA", tok[:len(tok)-2], "alice", Prefix + strings.Repeat("A", maxToken+1), tok[:len(tok)-3] + "\n" + tok[len(tok)-3:], tok + "\r\n"} {
		if got, err := s.Open(bad); err == nil {
			t.Errorf("%q opens to %+v", bad, got)
		}
	}
}

func TestCallIDHash(t *testing.T) {
	if CallIDHash("a") == CallIDHash("b") || CallIDHash("a") != CallIDHash("a") {
		t.Error("hash does not tell Call-IDs apart")
	}
}

// Whatever a Request-URI's user part holds, Open does not panic, and what
// it accepts seals the same content again.
func FuzzOpen(f *testing.F) {
	s := NewSealer(secret)
	f.Add(s.Seal(alice))
	f.Add(Prefix + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := s.Open(in)
		if err != nil {
			return
		}
		if again, err := s.Open(s.Seal(got)); err != nil || again != got {
			t.Fatalf("%q opens to %+v; sealed again it opens to %+v, %v", in, got, again, err)
		}
	})
}

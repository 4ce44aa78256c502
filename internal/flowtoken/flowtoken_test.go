package flowtoken

import (
	"errors"
	"net/netip"
	"testing"
)

var secret = []byte("a farm's shared secret, 32 bytes")

func TestRoundTrip(t *testing.T) {
	s := NewSigner(secret)
	for _, f := range []Flow{
		{Transport: "udp", Remote: netip.MustParseAddrPort("192.0.2.7:5060")},
		{Transport: "tcp", Remote: netip.MustParseAddrPort("192.0.2.7:49152"), Conn: 1},
		{Transport: "tls", Remote: netip.MustParseAddrPort("[2001:db8::1]:5061"), Conn: 1 << 40},
		{Transport: "ws", Remote: netip.MustParseAddrPort("127.0.0.1:1"), Conn: 300},
		{Transport: "wss", Remote: netip.MustParseAddrPort("[::1]:443"), Conn: ^uint64(0)},
	} {
		tok, err := s.Encode(f)
		if err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		got, err := s.Decode(tok)
		if err != nil || got != f {
			t.Errorf("%+v: token %q decodes to %+v, %v", f, tok, got, err)
		}
	}
}

// A v4-mapped address is named as the IPv4 address it is, so that the
// token of a dual-stack socket's peer matches the one of a v4 socket.
func TestMappedIsUnmapped(t *testing.T) {
	s := NewSigner(secret)
	tok, _ := s.Encode(Flow{Transport: "udp", Remote: netip.MustParseAddrPort("[::ffff:192.0.2.7]:5060")})
	f, err := s.Decode(tok)
	if err != nil || f.Remote != netip.MustParseAddrPort("192.0.2.7:5060") {
		t.Fatalf("%+v %v", f, err)
	}
}

func TestEncodeRefuses(t *testing.T) {
	s := NewSigner(secret)
	for _, f := range []Flow{
		{Transport: "sctp", Remote: netip.MustParseAddrPort("192.0.2.7:5060")},
		{Transport: "udp"},
		{Transport: "udp", Remote: netip.MustParseAddrPort("[fe80::1%eth0]:5060")},
	} {
		if tok, err := s.Encode(f); err == nil {
			t.Errorf("%+v: token %q, want an error", f, tok)
		}
	}
}

// Every changed character, another key, a truncation: none decodes.
func TestTamperedRefused(t *testing.T) {
	s := NewSigner(secret)
	tok, _ := s.Encode(Flow{Transport: "tcp", Remote: netip.MustParseAddrPort("192.0.2.7:49152"), Conn: 7})
	for i := range len(tok) {
		b := []byte(tok)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		if f, err := s.Decode(string(b)); err == nil {
			t.Errorf("token changed at %d decodes to %+v", i, f)
		}
	}
	if _, err := NewSigner([]byte("another farm's secret, 32 bytes!")).Decode(tok); !errors.Is(err, ErrForged) {
		t.Errorf("other key: %v, want ErrForged", err)
	}
	for _, bad := range []string{"", "x", tok[:len(tok)-1], tok + "AA", "!!!!", string(make([]byte, 100)), tok[:5] + "\n" + tok[5:], tok + "\r\n"} {
		if f, err := s.Decode(bad); err == nil {
			t.Errorf("%q decodes to %+v", bad, f)
		}
	}
}

// Whatever comes in a Route's user part, Decode does not panic, and what
// it accepts is exactly what Encode makes.
func FuzzDecode(f *testing.F) {
	s := NewSigner(secret)
	tok, _ := s.Encode(Flow{Transport: "ws", Remote: netip.MustParseAddrPort("192.0.2.7:49152"), Conn: 3})
	f.Add(tok)
	f.Add("AQEAAAAAAAAAAAAAAAAAAAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		fl, err := s.Decode(in)
		if err != nil {
			return
		}
		again, err := s.Encode(fl)
		if err != nil || again != in {
			t.Fatalf("%q decodes to %+v, which encodes to %q (%v)", in, fl, again, err)
		}
	})
}

// A token spelled with other unused bits in its last character is not
// the same token: only Encode's spelling is accepted.
func TestOneSpelling(t *testing.T) {
	s := NewSigner(secret)
	tok, _ := s.Encode(Flow{Transport: "udp", Remote: netip.MustParseAddrPort("192.0.2.7:5060")})
	last := tok[len(tok)-1]
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		if c == last {
			continue
		}
		if _, err := s.Decode(tok[:len(tok)-1] + string(c)); err == nil {
			t.Errorf("last character %q for %q accepted", c, last)
		}
	}
}

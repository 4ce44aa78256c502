package stun

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

func request(txid byte) []byte {
	b := make([]byte, headerLen)
	binary.BigEndian.PutUint16(b[0:2], bindingRequest)
	binary.BigEndian.PutUint32(b[4:8], magicCookie)
	for i := 8; i < 20; i++ {
		b[i] = txid + byte(i)
	}
	return b
}

func TestIsBindingRequest(t *testing.T) {
	withAttr := append(request(1), 0x80, 0x28, 0, 4, 1, 2, 3, 4) // FINGERPRINT-sized attribute
	binary.BigEndian.PutUint16(withAttr[2:4], 8)
	noCookie := request(1)
	noCookie[4] = 0
	response := request(1)
	binary.BigEndian.PutUint16(response[0:2], bindingSuccess)
	badLen := request(1)
	binary.BigEndian.PutUint16(badLen[2:4], 4)
	for _, c := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"binding request", request(1), true},
		{"with an attribute", withAttr, true},
		{"SIP", []byte("OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n"), false},
		{"keepalive CRLF", []byte("\r\n\r\n"), false},
		{"RFC 3489 (no cookie)", noCookie, false},
		{"a response", response, false},
		{"length not matching", badLen, false},
		{"short", request(1)[:19], false},
	} {
		if got := IsBindingRequest(c.b); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// The XOR-MAPPED-ADDRESS decodes back to the source, by RFC 5389's rule
// (the figures of RFC 5769 §2.2 and §2.3 use the same cookie and XOR).
func TestBindingResponse(t *testing.T) {
	for _, src := range []string{"192.0.2.1:32853", "[2001:db8:1234:5678:11:2233:4455:6677]:32853", "[::ffff:10.1.2.3]:5060"} {
		from := netip.MustParseAddrPort(src)
		req := request(7)
		res := BindingResponse(req, from)
		if binary.BigEndian.Uint16(res[0:2]) != bindingSuccess || string(res[4:20]) != string(req[4:20]) {
			t.Fatalf("%s: header %x", src, res[:20])
		}
		if n := int(binary.BigEndian.Uint16(res[2:4])); n != len(res)-headerLen {
			t.Fatalf("%s: length %d, message %d", src, n, len(res))
		}
		a := res[headerLen:]
		if binary.BigEndian.Uint16(a[0:2]) != xorMappedAddress {
			t.Fatalf("%s: attribute %x", src, a[0:2])
		}
		port := binary.BigEndian.Uint16(a[6:8]) ^ (magicCookie >> 16)
		ip := make([]byte, len(a)-8)
		for i := range ip {
			ip[i] = a[8+i] ^ res[4+i]
		}
		got, _ := netip.AddrFromSlice(ip)
		if want := from.Addr().Unmap(); got != want || port != from.Port() {
			t.Errorf("%s: XOR-MAPPED-ADDRESS decodes to %v:%d", src, got, port)
		}
		if fam := a[5]; (fam == 1) != from.Addr().Unmap().Is4() {
			t.Errorf("%s: family %d", src, fam)
		}
	}
}

func FuzzIsBindingRequest(f *testing.F) {
	f.Add(request(1))
	f.Add([]byte("REGISTER sip:x SIP/2.0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if !IsBindingRequest(b) {
			return
		}
		res := BindingResponse(b, netip.MustParseAddrPort("192.0.2.1:5060"))
		if len(res) != headerLen+12 || string(res[8:20]) != string(b[8:20]) {
			t.Fatalf("response %x to %x", res, b)
		}
	})
}

// Package stun answers the one STUN message a SIP server must: the Binding
// request a UDP user agent sends on its SIP flow as a keepalive (RFC 5626
// §4.4.2, §8), answered with a Binding success response whose
// XOR-MAPPED-ADDRESS tells the agent how the server sees it (RFC 5389
// §7.3, §15.2). A change of that address tells the agent its NAT binding
// moved, so it registers again.
//
// No other STUN method, no authentication and no attributes beyond that
// one: this is a keepalive responder on the SIP port, not a STUN server.
// The package is a leaf of pure functions over bytes, so that the UDP
// transport asks one question per datagram and fuzzing covers the rest.
package stun

import (
	"encoding/binary"
	"net/netip"
)

const (
	headerLen        = 20
	magicCookie      = 0x2112A442
	bindingRequest   = 0x0001
	bindingSuccess   = 0x0101
	xorMappedAddress = 0x0020
)

// IsBindingRequest reports whether b is a STUN Binding request: the two
// top bits zero, the Binding request type, a length that is a multiple of
// 4 and matches the datagram, and the magic cookie. A SIP message starts
// with a letter, so it never passes; neither does an RFC 3489 request
// (no cookie), which RFC 5626 agents do not send.
func IsBindingRequest(b []byte) bool {
	if len(b) < headerLen || b[0]&0xC0 != 0 {
		return false
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	return binary.BigEndian.Uint16(b[0:2]) == bindingRequest && n%4 == 0 && headerLen+n == len(b) &&
		binary.BigEndian.Uint32(b[4:8]) == magicCookie
}

// BindingResponse is the success response to the Binding request req
// (which IsBindingRequest accepted) from the address from: the same
// transaction ID and one XOR-MAPPED-ADDRESS attribute.
func BindingResponse(req []byte, from netip.AddrPort) []byte {
	addr := from.Addr().Unmap()
	family, alen := byte(0x01), 4
	if addr.Is6() {
		family, alen = 0x02, 16
	}
	attr := 4 + alen // family byte pair and port, then the address
	out := make([]byte, headerLen+4+attr)
	binary.BigEndian.PutUint16(out[0:2], bindingSuccess)
	binary.BigEndian.PutUint16(out[2:4], uint16(4+attr))
	copy(out[4:20], req[4:20]) // cookie and transaction ID
	a := out[headerLen:]
	binary.BigEndian.PutUint16(a[0:2], xorMappedAddress)
	binary.BigEndian.PutUint16(a[2:4], uint16(attr))
	a[5] = family
	binary.BigEndian.PutUint16(a[6:8], from.Port()^(magicCookie>>16))
	// The address is XORed with the cookie and, for IPv6, the transaction
	// ID after it: the 16 bytes at out[4:20].
	ip := addr.AsSlice()
	for i := range ip {
		a[8+i] = ip[i] ^ out[4+i]
	}
	return out
}

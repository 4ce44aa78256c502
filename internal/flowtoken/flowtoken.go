// Package flowtoken makes and checks the flow tokens of RFC 5626 §5.2:
// the user part of the Path entry a SIP edge proxy stores with a binding,
// naming the flow (the connection, or the NAT mapping of a UDP phone) the
// binding was registered over. A request routed back through that Path
// entry carries the token to the node that made it, which sends the
// request on that flow without looking anything up.
//
// A token is signed (HMAC-SHA-256, truncated to 96 bits) with a key the
// nodes of a farm share, so that no client can make a node send a
// request to an address of its choosing by writing a token of its own,
// and so that a node may decode the tokens of another (to reach a UDP
// phone directly once its home node is gone). The address is not hidden:
// it is the phone's own, which the phone already knows. The package is a
// leaf of pure functions, so fuzzing covers the decoder.
package flowtoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Flow is what a token names: the transport, the address the phone's
// packets come from, and for connection transports the serial of the
// connection, so that a new connection from the same address (rare, but
// legal) is a new flow and an old token does not reach it.
type Flow struct {
	Transport string // "udp", "tcp", "tls", "ws" or "wss"
	Remote    netip.AddrPort
	Conn      uint64 // 0 for UDP
}

// Errors of Decode. Both mean the token was not made by a node holding
// the key: the request carrying it is refused, never routed.
var (
	ErrMalformed = errors.New("flow token malformed")
	ErrForged    = errors.New("flow token signature does not verify")
)

const (
	version = 1
	macLen  = 12
	// flag6 marks an IPv6 remote in the first byte.
	flag6 = 0x08
)

var transports = [...]string{1: "udp", 2: "tcp", 3: "tls", 4: "ws", 5: "wss"}

func transportCode(name string) byte {
	for i, t := range transports {
		if i > 0 && t == name {
			return byte(i)
		}
	}
	return 0
}

// Signer makes and checks tokens under one key.
type Signer struct{ key []byte }

// NewSigner derives the token key from the farm's shared secret (at
// least 16 bytes; the caller checks), so that the same secret can key
// other things without the tokens revealing anything about them.
func NewSigner(secret []byte) *Signer {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("locsvc flow token v1"))
	return &Signer{key: m.Sum(nil)}
}

var enc = base64.RawURLEncoding.Strict() // unreserved in a user part; one spelling per token

// Encode makes the token of f. It fails only for a transport or address
// Flow cannot hold.
func (s *Signer) Encode(f Flow) (string, error) {
	code := transportCode(f.Transport)
	if code == 0 {
		return "", fmt.Errorf("flow token: unknown transport %q", f.Transport)
	}
	addr := f.Remote.Addr().Unmap()
	if !addr.IsValid() || addr.Zone() != "" {
		return "", fmt.Errorf("flow token: address %v cannot be named", f.Remote)
	}
	b := make([]byte, 0, 1+binary.MaxVarintLen64+16+2+macLen)
	first := byte(version<<4) | code
	if addr.Is6() {
		first |= flag6
	}
	b = append(b, first)
	b = binary.AppendUvarint(b, f.Conn)
	b = append(b, addr.AsSlice()...)
	b = binary.BigEndian.AppendUint16(b, f.Remote.Port())
	b = append(b, s.mac(b)...)
	return enc.EncodeToString(b), nil
}

// Decode checks tok and returns the flow it names. The signature is
// checked before anything in the token is believed.
func (s *Signer) Decode(tok string) (Flow, error) {
	// The decoder skips CR and LF wherever they fall; a token carrying
	// them is another spelling of the same bytes, and only Encode's
	// spelling is a token.
	if len(tok) > 64 || strings.ContainsAny(tok, "\r\n") {
		return Flow{}, ErrMalformed
	}
	b, err := enc.DecodeString(tok)
	if err != nil || len(b) < 1+1+4+2+macLen {
		return Flow{}, ErrMalformed
	}
	body, sum := b[:len(b)-macLen], b[len(b)-macLen:]
	if !hmac.Equal(sum, s.mac(body)) {
		return Flow{}, ErrForged
	}
	first := body[0]
	code := int(first & 0x07)
	if first>>4 != version || code == 0 || code >= len(transports) {
		return Flow{}, ErrMalformed
	}
	conn, n := binary.Uvarint(body[1:])
	if n <= 0 {
		return Flow{}, ErrMalformed
	}
	rest := body[1+n:]
	alen := 4
	if first&flag6 != 0 {
		alen = 16
	}
	if len(rest) != alen+2 {
		return Flow{}, ErrMalformed
	}
	addr, _ := netip.AddrFromSlice(rest[:alen])
	port := binary.BigEndian.Uint16(rest[alen:])
	return Flow{Transport: transports[code], Remote: netip.AddrPortFrom(addr, port), Conn: conn}, nil
}

func (s *Signer) mac(b []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write(b)
	return m.Sum(nil)[:macLen]
}

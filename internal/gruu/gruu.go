// Package gruu seals and opens the user part of temporary GRUUs (RFC 5627
// §3.2): URIs a registrar hands a UA instance that reach that instance
// alone, and that do not reveal the user's AoR to whoever the UA gives
// them to.
//
// A temp-gruu here is self-locating: it carries, encrypted and
// authenticated (AES-256-GCM under a key derived from the farm's shared
// secret), the AoR, the instance ID and a hash of the Call-ID of the
// registration it was issued for. Any node of the farm opens it without a
// table, and nobody without the key can make one that opens, change one,
// or read the AoR out of it. A new one is sealed for every registration
// (a fresh nonce), and every one sealed for an instance stays valid until
// that instance registers with another Call-ID (RFC 5627 §5.4): the
// caller compares the hash with the binding's current Call-ID.
//
// The package is a leaf of pure functions over strings, so fuzzing covers
// the decoder; the registrar builds the URIs around it.
package gruu

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"strings"
)

// Prefix starts every temp-gruu user part, so that a person reading a
// Request-URI can tell what it is.
const Prefix = "tgruu."

// ErrInvalid is every failure to open a token: malformed, forged,
// altered or sealed under another key. The request gets 404 either way.
var ErrInvalid = errors.New("temp-gruu does not verify")

// Temp is what a temp-gruu names.
type Temp struct {
	AoR      string
	Instance string
	// CallID is CallIDHash of the Call-ID of the registration the
	// temp-gruu was issued for.
	CallID uint64
}

// Sealer seals and opens temp-gruus under one key.
type Sealer struct{ aead cipher.AEAD }

// NewSealer derives the temp-gruu key from the farm's shared secret (at
// least 16 bytes; the caller checks): the label keeps it apart from every
// other key made from the same secret.
func NewSealer(secret []byte) *Sealer {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("locsvc temp-gruu v1"))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		panic(err) // a 32-byte key always makes a cipher
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &Sealer{aead: aead}
}

// CallIDHash is the Call-ID as a temp-gruu keeps it: enough to tell a
// new registration from the one the token was issued for, in 8 bytes.
func CallIDHash(callID string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(callID))
	return h.Sum64()
}

const version = 1

var enc = base64.RawURLEncoding.Strict()

// maxToken bounds what Open reads: an AoR and an instance at the largest
// URI length locsvc accepts, with room to spare.
const maxToken = 4096

// Seal makes the user part of a new temp-gruu for t (Prefix included).
func (s *Sealer) Seal(t Temp) string {
	plain := make([]byte, 0, 1+8+binary.MaxVarintLen64+len(t.AoR)+len(t.Instance))
	plain = append(plain, version)
	plain = binary.BigEndian.AppendUint64(plain, t.CallID)
	plain = binary.AppendUvarint(plain, uint64(len(t.AoR)))
	plain = append(plain, t.AoR...)
	plain = append(plain, t.Instance...)
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	rand.Read(nonce)
	return Prefix + enc.EncodeToString(s.aead.Seal(nonce, nonce, plain, nil))
}

// Open reads the user part of a temp-gruu (Prefix included).
func (s *Sealer) Open(user string) (Temp, error) {
	body, ok := strings.CutPrefix(user, Prefix)
	// CR and LF would be skipped by the decoder: refuse them so that a
	// temp-gruu has one spelling.
	if !ok || len(body) > maxToken || strings.ContainsAny(body, "\r\n") {
		return Temp{}, ErrInvalid
	}
	b, err := enc.DecodeString(body)
	ns := s.aead.NonceSize()
	if err != nil || len(b) < ns+s.aead.Overhead() {
		return Temp{}, ErrInvalid
	}
	plain, err := s.aead.Open(nil, b[:ns], b[ns:], nil)
	if err != nil || len(plain) < 1+8 || plain[0] != version {
		return Temp{}, ErrInvalid
	}
	call := binary.BigEndian.Uint64(plain[1:9])
	n, k := binary.Uvarint(plain[9:])
	rest := plain[9:]
	if k <= 0 || n > uint64(len(rest)-k) {
		return Temp{}, ErrInvalid
	}
	rest = rest[k:]
	return Temp{AoR: string(rest[:n]), Instance: string(rest[n:]), CallID: call}, nil
}

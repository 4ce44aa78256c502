package core

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"os"
	"time"
)

// nonces makes and checks stateless digest nonces:
// base64url(timestamp || HMAC-SHA256(key, timestamp || realm)), the
// timestamp in Unix nanoseconds, big-endian. Any node holding the key can
// check any node's nonce, and nothing is stored per challenge, so a flood
// of unanswered REGISTERs costs no memory.
type nonces struct {
	key      []byte
	realm    string
	lifetime time.Duration
	now      func() time.Time
}

type nonceState int

const (
	nonceFresh   nonceState = iota
	nonceStale              // ours, but older than the lifetime (or from a clock far ahead)
	nonceInvalid            // not made with this key and realm
)

const nonceRawLen = 8 + sha256.Size

// MinNonceKey is the shortest nonce key accepted, in bytes: shorter keys
// could be guessed from the nonces they sign.
const MinNonceKey = 16

func (n *nonces) issue() string {
	var raw [nonceRawLen]byte
	binary.BigEndian.PutUint64(raw[:8], uint64(n.now().UnixNano()))
	copy(raw[8:], n.sign(nil, raw[:8]))
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

func (n *nonces) sign(dst, ts []byte) []byte {
	m := hmac.New(sha256.New, n.key)
	m.Write(ts)
	m.Write([]byte(n.realm))
	return m.Sum(dst)
}

func (n *nonces) check(nonce string) nonceState {
	if base64.RawURLEncoding.DecodedLen(len(nonce)) != nonceRawLen {
		return nonceInvalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(raw) != nonceRawLen {
		return nonceInvalid
	}
	var sum [sha256.Size]byte
	if !hmac.Equal(n.sign(sum[:0], raw[:8]), raw[8:]) {
		return nonceInvalid
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(raw[:8])))
	age := n.now().Sub(issued)
	// A nonce from the future comes from a node whose clock is ahead;
	// accept as much skew as the lifetime, no more.
	if age > n.lifetime || age < -n.lifetime {
		return nonceStale
	}
	return nonceFresh
}

// LoadKey reads a secret the nodes of a farm share (the nonce key, the
// flow key) from a file: its bytes, surrounding whitespace removed; at
// least MinNonceKey.
func LoadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if len(b) < MinNonceKey {
		return nil, fmt.Errorf("%s: key has %d bytes, at least %d needed", path, len(b), MinNonceKey)
	}
	return b, nil
}

// NewNonce is a nonce as a node holding key would issue it for realm at
// now, for checking how nonces from other nodes (or other keys) are
// received.
func NewNonce(key []byte, realm string, now time.Time) string {
	n := nonces{key: key, realm: realm, now: func() time.Time { return now }}
	return n.issue()
}

package node

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"
)

// gossipKeys reads the gossip encryption keys the config names: none, the
// one key of GossipKeyFile, or GossipKeyring's list (the first encrypts,
// all decrypt). Validate calls it so that a bad file stops the node before
// it opens a socket.
func (c *Config) gossipKeys() ([][]byte, error) {
	switch {
	case c.GossipKeyFile != "":
		key, err := readKeyFile(c.GossipKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--gossip-key: %w", err)
		}
		return [][]byte{key}, nil
	case c.GossipKeyring != "":
		keys, err := readKeyring(c.GossipKeyring)
		if err != nil {
			return nil, fmt.Errorf("--gossip-keyring: %w", err)
		}
		return keys, nil
	}
	return nil, nil
}

// checkKeyLen accepts the AES key sizes memberlist takes.
func checkKeyLen(key []byte) error {
	switch len(key) {
	case 16, 24, 32:
		return nil
	}
	return fmt.Errorf("key is %d bytes; want 16, 24 or 32", len(key))
}

// readKeyFile reads a base64 key (16, 24 or 32 bytes) from a file.
func readKeyFile(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("%s: not base64: %v", path, err)
	}
	if err := checkKeyLen(key); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return key, nil
}

// readKeyring reads a gossip keyring file: one base64 key (16, 24 or 32
// bytes) a line, blank lines and # comments ignored, the first key the
// primary (the one that encrypts).
func readKeyring(path string) ([][]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys [][]byte
	seen := make(map[string]int)
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: not base64: %v", path, i+1, err)
		}
		if err := checkKeyLen(key); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, i+1, err)
		}
		// A duplicate is harmless to memberlist but is usually a rotation
		// step gone wrong (the new key pasted twice, the old one lost).
		if prev, ok := seen[string(key)]; ok {
			return nil, fmt.Errorf("%s:%d: same key as line %d", path, i+1, prev)
		}
		seen[string(key)] = i + 1
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no key in it", path)
	}
	return keys, nil
}

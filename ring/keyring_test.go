package ring

import (
	"fmt"
	"testing"
	"time"
)

// TestKeyringRotation: during a rolling key rotation every pair of
// adjacent steps must interoperate (a node restarted with the next
// keyring joins one still on the previous), and nodes two steps apart
// (old key only, new key only) must not.
func TestKeyringRotation(t *testing.T) {
	t.Parallel()
	oldKey := []byte("0123456789abcdef")
	newKey := []byte("fedcba9876543210fedcba98") // 24 bytes: sizes may differ
	steps := [][][]byte{
		{oldKey},         // before
		{oldKey, newKey}, // new key readable everywhere
		{newKey, oldKey}, // new key encrypts
		{newKey},         // old key gone
	}
	for i := 1; i < len(steps); i++ {
		a := testNode(t, fmt.Sprint("a", i), nil, func(c *Config) { c.Keys = steps[i-1] })
		b := testNode(t, fmt.Sprint("b", i), []string{a.LocalAddr()}, func(c *Config) { c.Keys = steps[i] })
		waitFor(t, 5*time.Second, fmt.Sprintf("step %d: b to join a", i), func() bool { return a.Ring().Len() == 2 && b.Ring().Len() == 2 })
	}
	a := testNode(t, "a-old", nil, func(c *Config) { c.Keys = steps[0] })
	b := testNode(t, "b-new", []string{a.LocalAddr()}, func(c *Config) { c.Keys = steps[3] })
	time.Sleep(1500 * time.Millisecond) // covers a rejoin attempt
	if a.Ring().Len() != 1 || b.Ring().Len() != 1 {
		t.Errorf("old-key-only and new-key-only nodes joined: %v, %v", shardIDs(a.Ring()), shardIDs(b.Ring()))
	}
}

func TestKeyringConfigErrors(t *testing.T) {
	good := []byte("0123456789abcdef")
	for name, cfg := range map[string]Config{
		"both":      {NodeID: "x", BindAddr: "127.0.0.1:0", SecretKey: good, Keys: [][]byte{good}},
		"short key": {NodeID: "x", BindAddr: "127.0.0.1:0", Keys: [][]byte{good, []byte("short")}},
	} {
		if m, err := Start(cfg); err == nil {
			m.Close()
			t.Errorf("%s: no error", name)
		}
	}
}

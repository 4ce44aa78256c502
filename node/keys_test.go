package node

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadKeyring(t *testing.T) {
	b64 := func(n int, fill byte) string {
		return base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(fill), n)))
	}
	path := filepath.Join(t.TempDir(), "keyring")
	if err := os.WriteFile(path, []byte("# new key, rotating in\n  "+b64(32, 'n')+"  \n\n# old\n"+b64(16, 'o')+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := readKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || string(keys[0]) != strings.Repeat("n", 32) || string(keys[1]) != strings.Repeat("o", 16) {
		t.Fatalf("keys %q", keys)
	}
}

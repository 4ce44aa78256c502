package apitoken

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	tokA = "c2VjcmV0LXRva2VuLWE="
	tokB = "second-token_0123456789.~+/"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string
		err        string // substring of the error; "" for none
	}{
		{"one", tokA + "\n", []string{tokA}, ""},
		{"no final newline", tokA, []string{tokA}, ""},
		{"two in order, comments and blanks", "# rotation\n\n" + tokB + "\r\n  " + tokA + "  \n", []string{tokB, tokA}, ""},
		{"empty", "", nil, "no token"},
		{"comments only", "# nothing\n\n", nil, "no token"},
		{"too short", "short-token\n", nil, "line 1: a token of 11 characters"},
		{"space inside", "abcdefgh ijklmnopq\n", nil, `line 1: a token with the character ' '`},
		{"quote", "\"abcdefghijklmnopq\"\n", nil, `the character '"'`},
		{"after padding", "abcdefghijklmnop=q\n", nil, "after its = padding"},
		{"bad second line named", tokA + "\n\nbad\n", nil, "line 3:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.text))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("Parse = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// A refused token never shows in the error, which ends up in logs.
func TestParseErrorHidesToken(t *testing.T) {
	const secret = "almost-a-token-but with a space"
	_, err := Parse([]byte(secret))
	if err == nil || strings.Contains(err.Error(), "almost") {
		t.Fatalf("err = %v", err)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	writeFile(t, path, tokA+"\n"+tokB+"\n")
	f, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		presented string
		want      bool
	}{
		{tokA, true},
		{tokB, true},
		{"", false},
		{tokA[:len(tokA)-1], false},
		{tokA + "x", false},
		{strings.ToUpper(tokA), false},
		{" " + tokA, false},
	} {
		if got := f.Check(tc.presented); got != tc.want {
			t.Errorf("Check(%q) = %v, want %v", tc.presented, got, tc.want)
		}
	}
	if f.Token() != tokA {
		t.Errorf("Token() = %q, want the first, %q", f.Token(), tokA)
	}
}

func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing"), nil); err == nil {
		t.Error("a missing file opened")
	}
	bad := filepath.Join(dir, "bad")
	writeFile(t, bad, "# none\n")
	if _, err := Open(bad, nil); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("err = %v, want one naming the file", err)
	}
}

// A changed file is read again at the next call after the interval; one
// that does not parse leaves the previous tokens in service until it is
// fixed.
func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	writeFile(t, path, tokA+"\n")
	f, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	clock := time.Now()
	f.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	f.next.Store(clock.Add(checkInterval).UnixNano())
	advance := func() { mu.Lock(); clock = clock.Add(checkInterval); mu.Unlock() }
	// Distinct sizes make the change visible even within one mtime tick.
	touch := func(text string) {
		writeFile(t, path, text)
		_ = os.Chtimes(path, time.Now(), time.Now().Add(time.Duration(len(text))*time.Second))
	}

	touch(tokB + "\n" + tokA + "\n")
	if f.Check(tokB) {
		t.Fatal("the file was read again before the interval passed")
	}
	advance()
	if !f.Check(tokB) || !f.Check(tokA) || f.Token() != tokB {
		t.Fatal("rotation step not picked up")
	}

	touch("")
	advance()
	if !f.Check(tokB) {
		t.Fatal("an emptied file took the tokens out of service")
	}

	touch(tokB + "\n")
	advance()
	if f.Check(tokA) || !f.Check(tokB) {
		t.Fatal("the dropped token is still accepted")
	}
}

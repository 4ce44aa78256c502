// Package apitoken holds the bearer tokens that protect locsvc's gRPC and
// HTTP APIs (--api-token): it reads them from a file, notices when the
// file changes, and checks a presented token against them in constant
// time.
//
// A token file holds one token a line; blank lines and lines starting
// with # are ignored. A server accepts every token in the file; a client
// sends the first. Rotation is therefore the gossip keyring's: add the
// new token on a second line on the servers, put it first on the
// clients, then drop the old one (docs/security.md).
//
// Tokens are RFC 6750 b64token strings (letters, digits, - . _ ~ + /,
// then = padding) of at least MinLen characters, so that one travels
// unchanged in an Authorization header, in gRPC metadata and in a
// Kamailio script, and a short, guessable one is refused at start.
package apitoken

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// MinLen is the shortest token accepted: 16 characters of base64 carry
// 96 bits, beyond any online guessing.
const MinLen = 16

// Parse reads the tokens of a token file's contents, in order.
func Parse(data []byte) ([]string, error) {
	var tokens []string
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if err := check(line); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		tokens = append(tokens, string(line))
	}
	if len(tokens) == 0 {
		return nil, errors.New("no token in it (one a line; blank lines and # comments are ignored)")
	}
	return tokens, nil
}

// check reports why tok is not an acceptable token. The token itself is
// never part of the message: errors end up in logs.
func check(tok []byte) error {
	if len(tok) < MinLen {
		return fmt.Errorf("a token of %d characters; at least %d are needed (e.g. head -c 32 /dev/urandom | base64)", len(tok), MinLen)
	}
	pad := false
	for _, c := range tok {
		switch {
		case c == '=':
			pad = true
		case pad:
			return errors.New("a token with characters after its = padding")
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return fmt.Errorf("a token with the character %q; tokens are letters, digits, - . _ ~ + / and = padding (RFC 6750)", c)
		}
	}
	return nil
}

// Load reads and parses a token file.
func Load(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	tokens, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tokens, nil
}

// checkInterval bounds how often a call looks at the file: a stat per
// call would cost more than the check itself.
const checkInterval = time.Second

// File is a token file in service: what Check accepts and Token sends
// follow the file's contents, re-read when its modification time or size
// changes (looked at, at most once a second, by a call). A change that
// does not parse (a file half written, emptied by mistake) keeps the
// previous tokens in service and is logged.
type File struct {
	path string
	log  *slog.Logger
	now  func() time.Time

	cur  atomic.Pointer[set]
	next atomic.Int64 // UnixNano after which a call looks at the file again

	mu      sync.Mutex // one reload at a time
	lastErr string
}

// set is one version of the file's tokens, never changed once made.
type set struct {
	tokens []string
	sums   [][sha256.Size]byte
	mod    time.Time
	size   int64
}

// Open reads the token file at path. log (nil: discarded) hears about
// reloads.
func Open(path string, log *slog.Logger) (*File, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &File{path: path, log: log, now: time.Now}
	s, err := f.read()
	if err != nil {
		return nil, err
	}
	f.cur.Store(s)
	f.next.Store(f.now().Add(checkInterval).UnixNano())
	return f, nil
}

func (f *File) read() (*set, error) {
	fi, err := os.Stat(f.path)
	if err != nil {
		return nil, err
	}
	tokens, err := Load(f.path)
	if err != nil {
		return nil, err
	}
	s := &set{tokens: tokens, mod: fi.ModTime(), size: fi.Size()}
	for _, t := range tokens {
		s.sums = append(s.sums, sha256.Sum256([]byte(t)))
	}
	return s, nil
}

// current returns the tokens in service, re-reading the file first when
// it is due and has changed.
func (f *File) current() *set {
	now := f.now().UnixNano()
	next := f.next.Load()
	if now < next || !f.next.CompareAndSwap(next, now+int64(checkInterval)) {
		return f.cur.Load()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cur := f.cur.Load()
	fi, err := os.Stat(f.path)
	if err == nil && fi.ModTime().Equal(cur.mod) && fi.Size() == cur.size {
		return cur
	}
	s, err := f.read()
	if err != nil {
		// Logged once per distinct error: the check runs every second.
		if msg := err.Error(); msg != f.lastErr {
			f.lastErr = msg
			f.log.Warn("API token file changed but does not load; still using the previous tokens", "file", f.path, "err", err)
		}
		return cur
	}
	f.lastErr = ""
	f.cur.Store(s)
	f.log.Info("API token file reloaded", "file", f.path, "tokens", len(s.tokens))
	return s
}

// Check reports whether presented is one of the tokens. It compares
// SHA-256 digests, each against every token, so that the time it takes
// tells nothing of which token, or how much of one, matched, nor of the
// tokens' lengths.
func (f *File) Check(presented string) bool {
	sum := sha256.Sum256([]byte(presented))
	ok := 0
	for _, s := range f.current().sums {
		ok |= subtle.ConstantTimeCompare(sum[:], s[:])
	}
	return ok == 1
}

// Token is the token a client sends: the file's first.
func (f *File) Token() string { return f.current().tokens[0] }

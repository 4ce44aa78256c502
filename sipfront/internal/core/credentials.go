package core

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Credentials is where digest authentication finds users. CredentialFile
// implements it; a database-backed store could too.
type Credentials interface {
	// HA1 returns the lower-case hex H(user:realm:password) stored for
	// alg, if any.
	HA1(user, realm string, alg Algorithm) (string, bool)
	// Algorithms lists the algorithms some user has an HA1 for, strongest
	// first; challenges offer exactly these.
	Algorithms() []Algorithm
}

// CredentialFile is a credentials file loaded in memory. Its format is one
// "user:realm:HA1" per line, where HA1 is H(user:realm:password) in hex:
// 32 hex digits for MD5, 64 for SHA-256. A user that should be able to
// answer both algorithms has one line of each. Blank lines and lines
// starting with '#' are ignored. HA1 computes the hash.
type CredentialFile struct {
	ha1  map[credKey]string
	algs []Algorithm
}

type credKey struct {
	user, realm string
	alg         Algorithm
}

// LoadCredentials reads a credentials file. A file without a single entry
// is an error: asking for authentication and getting none would leave the
// server open.
func LoadCredentials(path string) (*CredentialFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := ParseCredentials(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if c.Len() == 0 {
		return nil, fmt.Errorf("%s: no credentials (want user:realm:HA1 lines)", path)
	}
	return c, nil
}

// ParseCredentials reads credentials in the file format.
func ParseCredentials(r io.Reader) (*CredentialFile, error) {
	c := &CredentialFile{ha1: make(map[credKey]string)}
	sc := bufio.NewScanner(r)
	seen := map[Algorithm]bool{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		parts := strings.Split(line, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("line %d: want user:realm:HA1", n)
		}
		user, realm, ha1 := parts[0], parts[1], strings.ToLower(parts[2])
		if user == "" || realm == "" {
			return nil, fmt.Errorf("line %d: empty user or realm", n)
		}
		var alg Algorithm
		switch len(ha1) {
		case MD5.hexLen():
			alg = MD5
		case SHA256.hexLen():
			alg = SHA256
		default:
			return nil, fmt.Errorf("line %d: HA1 must be 32 (MD5) or 64 (SHA-256) hex digits, got %d characters", n, len(ha1))
		}
		if _, err := hex.DecodeString(ha1); err != nil {
			return nil, fmt.Errorf("line %d: HA1 is not hex", n)
		}
		k := credKey{user, realm, alg}
		if _, dup := c.ha1[k]; dup {
			return nil, fmt.Errorf("line %d: second %s entry for %s in realm %s", n, alg, user, realm)
		}
		c.ha1[k] = ha1
		seen[alg] = true
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, a := range algorithms {
		if seen[a] {
			c.algs = append(c.algs, a)
		}
	}
	return c, nil
}

// HA1 implements Credentials.
func (c *CredentialFile) HA1(user, realm string, alg Algorithm) (string, bool) {
	if c == nil {
		return "", false
	}
	h, ok := c.ha1[credKey{user, realm, alg}]
	return h, ok
}

// Algorithms implements Credentials.
func (c *CredentialFile) Algorithms() []Algorithm {
	if c == nil {
		return nil
	}
	return c.algs
}

// Len is the number of entries.
func (c *CredentialFile) Len() int {
	if c == nil {
		return 0
	}
	return len(c.ha1)
}

// CredentialLine renders one credentials file line for a password, for
// `locsvc passwd`.
func CredentialLine(user, realm, password string, alg Algorithm) (string, error) {
	if user == "" || realm == "" || strings.ContainsAny(user+realm, ":\r\n") {
		return "", errors.New("user and realm must be non-empty and hold no ':' or line breaks")
	}
	h, err := HA1(user, realm, password, alg)
	if err != nil {
		return "", err
	}
	return user + ":" + realm + ":" + h, nil
}

package sipuri

import (
	"fmt"
	"strings"
)

// Unescape undoes %XX escapes and rejects a malformed one, for parsing:
// a URI with a broken escape has no meaning to compare.
func Unescape(s string) (string, error) {
	return unescape(s, true)
}

// UnescapeLax undoes %XX escapes and leaves a malformed one as written,
// for comparing a user part with a digest username: the request was
// accepted already, and the comparison then simply fails.
func UnescapeLax(s string) string {
	u, _ := unescape(s, false)
	return u
}

func unescape(s string, strict bool) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) || !IsHex(s[i+1]) || !IsHex(s[i+2]) {
			if strict {
				return "", fmt.Errorf("bad escape in %q", s)
			}
			b.WriteByte(s[i])
			continue
		}
		b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
		i += 2
	}
	return b.String(), nil
}

// PercentEncode writes s with every byte that safe rejects as %XX
// (upper-case hex), so that one value has exactly one spelling.
func PercentEncode(s string, safe func(byte) bool) string {
	const hexDigits = "0123456789ABCDEF"
	clean := true
	for i := 0; i < len(s); i++ {
		if !safe(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if safe(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

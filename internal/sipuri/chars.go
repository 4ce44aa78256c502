package sipuri

import "strings"

// IsToken reports whether c belongs to RFC 3261's token alphabet.
func IsToken(c byte) bool {
	return IsAlnum(c) || strings.IndexByte("-.!%*_+`'~", c) >= 0
}

// IsDigit reports whether c is an ASCII digit.
func IsDigit(c byte) bool { return c >= '0' && c <= '9' }

// AllDigits reports whether s is 1*DIGIT. strconv alone would also take
// a sign ("+5060"), which the grammar does not allow.
func AllDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !IsDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// IsAlnum reports whether c is an ASCII letter or digit.
func IsAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || IsDigit(c)
}

// IsHex reports whether c is a hexadecimal digit, in either case.
func IsHex(c byte) bool {
	return IsDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// IsUnreserved is RFC 3261's unreserved set: alphanumerics and marks.
func IsUnreserved(c byte) bool {
	return IsAlnum(c) || strings.IndexByte("-_.!~*'()", c) >= 0
}

// UserSafe is RFC 3261's unreserved plus user-unreserved set: what a user
// part may hold unescaped.
func UserSafe(c byte) bool {
	return IsUnreserved(c) || strings.IndexByte("&=+$,;?/", c) >= 0
}

// ParamSafe is RFC 3261's paramchar set without escapes: param-unreserved
// plus unreserved.
func ParamSafe(c byte) bool {
	return IsUnreserved(c) || strings.IndexByte("[]/:&+$", c) >= 0
}

// HeaderValueSafe is the hvalue set of a URI header: unreserved plus
// hnv-unreserved.
func HeaderValueSafe(c byte) bool {
	return IsUnreserved(c) || strings.IndexByte("[]/?:+$", c) >= 0
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

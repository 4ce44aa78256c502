package sipuri

import (
	"errors"
	"fmt"
	"strings"
)

// NameAddr is one element of a Contact, Path or similar header list:
// name-addr or addr-spec followed by header parameters (RFC 3261 §20.10,
// §25.1). URI is kept exactly as sent, so what is stored is what the UA
// wrote.
type NameAddr struct {
	URI      string
	Wildcard bool // the element is "*"
	Params   []Param
}

// Param is a header parameter; Name is lower-cased (parameter names are
// case-insensitive), Value is unquoted.
type Param struct {
	Name     string
	Value    string
	HasValue bool
	Quoted   bool
}

// Param returns the first parameter called name (lower-case).
func (n *NameAddr) Param(name string) (Param, bool) {
	for _, p := range n.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// ParseNameAddrs splits a header value into its comma-separated elements.
// Commas inside quoted strings and angle brackets do not split.
func ParseNameAddrs(v string) ([]NameAddr, error) {
	var out []NameAddr
	rest := v
	for {
		elem, tail, err := nextListElement(rest)
		if err != nil {
			return nil, err
		}
		na, err := ParseNameAddr(elem)
		if err != nil {
			return nil, err
		}
		out = append(out, na)
		if tail == "" {
			return out, nil
		}
		rest = tail
	}
}

// nextListElement cuts the first element off a comma-separated list. tail
// is "" when elem was the last one.
func nextListElement(s string) (elem, tail string, err error) {
	inQuote, inAngle := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote:
			if c == '\\' {
				i++
			} else if c == '"' {
				inQuote = false
			}
		case c == '"':
			inQuote = true
		case c == '<':
			if inAngle {
				return "", "", errors.New("'<' inside <>")
			}
			inAngle = true
		case c == '>':
			inAngle = false
		case c == ',' && !inAngle:
			tail = s[i+1:]
			if strings.TrimSpace(tail) == "" {
				return "", "", errors.New("empty element after ','")
			}
			return s[:i], tail, nil
		}
	}
	if inQuote {
		return "", "", errors.New("unterminated quoted string")
	}
	if inAngle {
		return "", "", errors.New("missing '>'")
	}
	return s, "", nil
}

// ParseNameAddr parses one list element.
func ParseNameAddr(s string) (NameAddr, error) {
	var na NameAddr
	s = TrimLWS(s)
	if s == "" {
		return na, errors.New("empty element")
	}
	if s == "*" {
		na.Wildcard = true
		return na, nil
	}
	var rest string
	switch lt := indexUnquoted(s, '<'); {
	case lt >= 0:
		// name-addr: an optional display name, then <URI>.
		if err := checkDisplayName(s[:lt]); err != nil {
			return na, err
		}
		gt := strings.IndexByte(s[lt:], '>')
		if gt < 0 {
			return na, errors.New("missing '>'")
		}
		na.URI = strings.TrimSpace(s[lt+1 : lt+gt])
		rest = s[lt+gt+1:]
	default:
		// addr-spec: the URI ends at the first ';', which starts header
		// parameters (§20.10), or at whitespace.
		end := strings.IndexAny(s, "; \t")
		if end < 0 {
			end = len(s)
		}
		na.URI = s[:end]
		rest = s[end:]
	}
	if na.URI == "" {
		return na, errors.New("empty URI")
	}
	if strings.ContainsAny(na.URI, " \t\"<>") {
		return na, fmt.Errorf("invalid character in URI %q", na.URI)
	}
	params, err := ParseParams(rest)
	if err != nil {
		return na, err
	}
	na.Params = params
	return na, nil
}

// checkDisplayName accepts a quoted string or tokens separated by LWS.
func checkDisplayName(s string) error {
	s = TrimLWS(s)
	if s == "" {
		return nil
	}
	if s[0] == '"' {
		_, n, err := QuotedString(s)
		if err != nil {
			return err
		}
		if TrimLWS(s[n:]) != "" {
			return errors.New("text after quoted display name")
		}
		return nil
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !IsToken(c) && c != ' ' && c != '\t' {
			return fmt.Errorf("invalid character %q in display name", c)
		}
	}
	return nil
}

// ParseParams parses *( SEMI generic-param ).
func ParseParams(s string) ([]Param, error) {
	var out []Param
	s = TrimLWS(s)
	for s != "" {
		if s[0] != ';' {
			return nil, fmt.Errorf("unexpected %q where ';' or the end was expected", Clip(s))
		}
		s = TrimLWS(s[1:])
		i := 0
		for i < len(s) && IsToken(s[i]) {
			i++
		}
		if i == 0 {
			return nil, errors.New("empty parameter name")
		}
		p := Param{Name: strings.ToLower(s[:i])}
		s = TrimLWS(s[i:])
		if s != "" && s[0] == '=' {
			s = TrimLWS(s[1:])
			p.HasValue = true
			if s != "" && s[0] == '"' {
				v, n, err := QuotedString(s)
				if err != nil {
					return nil, fmt.Errorf("parameter %s: %v", p.Name, err)
				}
				p.Value, p.Quoted, s = v, true, s[n:]
			} else {
				j := 0
				for j < len(s) && (IsToken(s[j]) || s[j] == ':' || s[j] == '[' || s[j] == ']') {
					j++
				}
				if j == 0 {
					return nil, fmt.Errorf("parameter %s: empty value", p.Name)
				}
				p.Value, s = s[:j], s[j:]
			}
			s = TrimLWS(s)
		}
		out = append(out, p)
	}
	return out, nil
}

// QuotedString reads a quoted-string at the start of s and returns its
// unescaped content and the bytes consumed.
func QuotedString(s string) (string, int, error) {
	if s == "" || s[0] != '"' {
		return "", 0, errors.New("quoted string expected")
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 >= len(s) || s[i+1] == '\r' || s[i+1] == '\n' {
				return "", 0, errors.New("bad escape in quoted string")
			}
			b.WriteByte(s[i+1])
			i++
		case '"':
			return b.String(), i + 1, nil
		case '\r', '\n':
			return "", 0, errors.New("line break in quoted string")
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, errors.New("unterminated quoted string")
}

// indexUnquoted is strings.IndexByte ignoring quoted strings.
func indexUnquoted(s string, c byte) int {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch {
		case inQuote && s[i] == '\\':
			i++
		case s[i] == '"':
			inQuote = !inQuote
		case !inQuote && s[i] == c:
			return i
		}
	}
	return -1
}

// TrimLWS trims the spaces and tabs that may surround any element.
func TrimLWS(s string) string { return strings.Trim(s, " \t") }

// Clip shortens user input quoted in an error message, so that a hostile
// header cannot make a log line or a reason phrase arbitrarily long.
func Clip(s string) string {
	const n = 24
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// QuoteEscape escapes s for the inside of a quoted-string, the inverse of
// what QuotedString unescapes.
func QuoteEscape(s string) string {
	return quoteReplacer.Replace(s)
}

var quoteReplacer = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

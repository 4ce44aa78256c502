package sipfront

import (
	"errors"
	"fmt"
	"strings"
)

// nameAddr is one element of a Contact, Path or similar header list:
// name-addr or addr-spec followed by header parameters (RFC 3261 §20.10,
// §25.1). URI is kept exactly as sent, so what is stored is what the UA
// wrote.
type nameAddr struct {
	URI      string
	Wildcard bool // the element is "*"
	Params   []param
}

// param is a header parameter; Name is lower-cased (parameter names are
// case-insensitive), Value is unquoted.
type param struct {
	Name     string
	Value    string
	HasValue bool
	Quoted   bool
}

func (n *nameAddr) param(name string) (param, bool) {
	for _, p := range n.Params {
		if p.Name == name {
			return p, true
		}
	}
	return param{}, false
}

// parseNameAddrs splits a header value into its comma-separated elements.
// Commas inside quoted strings and angle brackets do not split.
func parseNameAddrs(v string) ([]nameAddr, error) {
	var out []nameAddr
	rest := v
	for {
		elem, tail, err := nextListElement(rest)
		if err != nil {
			return nil, err
		}
		na, err := parseNameAddr(elem)
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

// parseNameAddr parses one list element.
func parseNameAddr(s string) (nameAddr, error) {
	var na nameAddr
	s = trimLWS(s)
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
	params, err := parseParams(rest)
	if err != nil {
		return na, err
	}
	na.Params = params
	return na, nil
}

// checkDisplayName accepts a quoted string or tokens separated by LWS.
func checkDisplayName(s string) error {
	s = trimLWS(s)
	if s == "" {
		return nil
	}
	if s[0] == '"' {
		_, n, err := quotedString(s)
		if err != nil {
			return err
		}
		if trimLWS(s[n:]) != "" {
			return errors.New("text after quoted display name")
		}
		return nil
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isTokenChar(c) && c != ' ' && c != '\t' {
			return fmt.Errorf("invalid character %q in display name", c)
		}
	}
	return nil
}

// parseParams parses *( SEMI generic-param ).
func parseParams(s string) ([]param, error) {
	var out []param
	s = trimLWS(s)
	for s != "" {
		if s[0] != ';' {
			return nil, fmt.Errorf("unexpected %q where ';' or the end was expected", clip(s))
		}
		s = trimLWS(s[1:])
		i := 0
		for i < len(s) && isTokenChar(s[i]) {
			i++
		}
		if i == 0 {
			return nil, errors.New("empty parameter name")
		}
		p := param{Name: strings.ToLower(s[:i])}
		s = trimLWS(s[i:])
		if s != "" && s[0] == '=' {
			s = trimLWS(s[1:])
			p.HasValue = true
			if s != "" && s[0] == '"' {
				v, n, err := quotedString(s)
				if err != nil {
					return nil, fmt.Errorf("parameter %s: %v", p.Name, err)
				}
				p.Value, p.Quoted, s = v, true, s[n:]
			} else {
				j := 0
				for j < len(s) && (isTokenChar(s[j]) || s[j] == ':' || s[j] == '[' || s[j] == ']') {
					j++
				}
				if j == 0 {
					return nil, fmt.Errorf("parameter %s: empty value", p.Name)
				}
				p.Value, s = s[:j], s[j:]
			}
			s = trimLWS(s)
		}
		out = append(out, p)
	}
	return out, nil
}

// quotedString reads a quoted-string at the start of s and returns its
// unescaped content and the bytes consumed.
func quotedString(s string) (string, int, error) {
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

// isTokenChar is RFC 3261's token alphabet.
func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("-.!%*_+`'~", c) >= 0
}

func trimLWS(s string) string { return strings.Trim(s, " \t") }

// clip shortens user input quoted in an error message.
func clip(s string) string {
	const n = 24
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

package core

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/locsvc/locsvc/locsvc"

	"github.com/locsvc/locsvc/internal/sipuri"
)

// parseContacts maps the Contact header values of a REGISTER onto the
// registrar's contacts. wildcard reports a "*" element. Only syntax is
// checked here; locsvc.Check judges the values (q range, URI schemes,
// "*" mixed with contacts, limits). reg-id is kept only when the UA
// supports outbound and gave +sip.instance: otherwise RFC 5626 §6 has the
// registrar ignore it and bind by URI.
func parseContacts(values []string, outbound bool) (contacts []locsvc.Contact, wildcard bool, err error) {
	for _, v := range values {
		elems, err := sipuri.ParseNameAddrs(v)
		if err != nil {
			return nil, false, err
		}
		for _, e := range elems {
			if e.Wildcard {
				wildcard = true
				continue
			}
			c, err := contactOf(e, outbound)
			if err != nil {
				return nil, false, err
			}
			contacts = append(contacts, c)
		}
	}
	return contacts, wildcard, nil
}

func contactOf(e sipuri.NameAddr, outbound bool) (locsvc.Contact, error) {
	c := locsvc.Contact{URI: e.URI}
	if p, ok := e.Param("expires"); ok {
		n, err := parseDeltaSeconds(p.Value)
		if err != nil {
			return c, fmt.Errorf("expires: %v", err)
		}
		c.Expires, c.HasExpires = n, true
	}
	if p, ok := e.Param("q"); ok {
		q, err := parseQValue(p.Value)
		if err != nil {
			return c, fmt.Errorf("q: %v", err)
		}
		c.Q, c.HasQ = q, true
	}
	if p, ok := e.Param("+sip.instance"); ok {
		if p.Value == "" {
			return c, fmt.Errorf("+sip.instance: empty")
		}
		c.Instance = p.Value
	}
	if p, ok := e.Param("reg-id"); ok {
		n, err := strconv.ParseUint(p.Value, 10, 31)
		if err != nil || n == 0 || !sipuri.AllDigits(p.Value) {
			return c, fmt.Errorf("reg-id: %q is not a number from 1 to 2**31-1", sipuri.Clip(p.Value))
		}
		if outbound && c.Instance != "" {
			c.RegID = uint32(n)
		}
	}
	return c, nil
}

// parseDeltaSeconds reads an expires value (RFC 3261 §20.19, §25.1:
// 1*DIGIT). Values beyond 2**32-1 mean 2**32-1; the registrar shortens
// them to its maximum anyway.
func parseDeltaSeconds(v string) (int64, error) {
	if !sipuri.AllDigits(v) {
		return 0, fmt.Errorf("%q is not a number of seconds", sipuri.Clip(v))
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > math.MaxUint32 {
		return math.MaxUint32, nil
	}
	return int64(n), nil
}

// parseQValue reads a q parameter: digits with at most one dot. The range
// (0 to 1) is the registrar's to judge, so its error names the limit.
func parseQValue(v string) (float64, error) {
	digits, dots, bad := 0, 0, false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case sipuri.IsDigit(c):
			digits++
		case c == '.':
			dots++
		default:
			bad = true
		}
	}
	if bad || digits == 0 || dots > 1 || len(v) > 8 {
		return 0, fmt.Errorf("%q is not a q-value", sipuri.Clip(v))
	}
	return strconv.ParseFloat(v, 64)
}

// formatQ renders a q-value held in thousandths ("1", "0.5", "0.125").
func formatQ(q int) string {
	if q >= 1000 {
		return "1"
	}
	if q <= 0 {
		return "0"
	}
	return strings.TrimRight(fmt.Sprintf("0.%03d", q), "0")
}

package locsvc

import (
	"fmt"
	"time"
)

// Limits are the registrar's policy and the size bounds that keep one
// record well below memcached's item size. All are flags of `locsvc serve`.
type Limits struct {
	// MinExpires: a requested expiry above 0 and below it gets 423.
	MinExpires time.Duration
	// MaxExpires: longer requests are granted this much. It also bounds how
	// long removed and lapsed entries are kept (see retention).
	MaxExpires time.Duration
	// DefaultExpires applies when neither the contact nor the request says.
	DefaultExpires time.Duration
	// MaxContacts per AoR, counting live bindings after the request.
	MaxContacts int
	// MaxURILen bounds the AoR, each contact URI and each Path entry.
	MaxURILen int
	// MaxPath bounds the Path entries of one request.
	MaxPath int
	// MaxFieldLen bounds Call-ID, User-Agent, +sip.instance and received.
	MaxFieldLen int
	// ExpiresJitter (percent, 0 to 90) shortens each granted expiry e to
	// a value in [(1-ExpiresJitter/100) e, e], never below MinExpires, so
	// that phones that registered together (after an outage) refresh
	// spread out instead of all at once at every interval. Kamailio's
	// default_expires_range does the same.
	ExpiresJitter int
}

// DefaultLimits are what `locsvc serve` starts with: Kamailio's registrar
// defaults where it has them (min 60 s, default 3600 s, 512-byte contacts).
func DefaultLimits() Limits {
	return Limits{
		MinExpires:     60 * time.Second,
		MaxExpires:     2 * time.Hour,
		DefaultExpires: time.Hour,
		MaxContacts:    16,
		MaxURILen:      512,
		MaxPath:        8,
		MaxFieldLen:    256,
	}
}

// Validate reports limits that cannot work together.
func (l Limits) Validate() error {
	switch {
	case l.MinExpires < time.Second:
		return fmt.Errorf("min-expires must be at least 1s, got %v", l.MinExpires)
	case l.MinExpires > time.Hour:
		// RFC 3261 §10.3: a registrar may only answer 423 to intervals
		// below one hour, and may shorten but never lengthen one.
		return fmt.Errorf("min-expires must be at most 1h, got %v", l.MinExpires)
	case l.MaxExpires < l.MinExpires:
		return fmt.Errorf("max-expires (%v) is below min-expires (%v)", l.MaxExpires, l.MinExpires)
	case l.DefaultExpires < l.MinExpires || l.DefaultExpires > l.MaxExpires:
		return fmt.Errorf("default-expires (%v) must lie between min-expires (%v) and max-expires (%v)",
			l.DefaultExpires, l.MinExpires, l.MaxExpires)
	case l.MaxContacts < 1:
		return fmt.Errorf("max-contacts must be at least 1, got %d", l.MaxContacts)
	case l.MaxURILen < 32 || l.MaxFieldLen < 32:
		return fmt.Errorf("max-uri-len and max-field-len must be at least 32")
	case l.MaxPath < 0:
		return fmt.Errorf("max-path must not be negative")
	case l.ExpiresJitter < 0 || l.ExpiresJitter > 90:
		return fmt.Errorf("expires-jitter must lie between 0 and 90 (percent), got %d", l.ExpiresJitter)
	}
	return nil
}

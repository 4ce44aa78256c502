package locsvc

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/locsvc/locsvc/internal/sipuri"
)

// NormalizeAoR turns a To URI into the address-of-record that keys the
// location table: "sip:" user "@" host[:port], per RFC 3261 §10.3 step 5
// (URI parameters and headers removed, escapes normalised, host
// lower-cased, user case kept). sips: AoRs map to sip: because both name
// the same user; the scheme of each contact is kept where it matters.
func NormalizeAoR(raw string) (string, error) {
	u, err := sipuri.Parse(raw)
	if err != nil {
		return "", err
	}
	if !u.HasUser {
		return "", errNoUser
	}
	return "sip:" + sipuri.PercentEncode(u.User, sipuri.UserSafe) + "@" + u.HostPort(), nil
}

var errNoUser = errorString("missing user part (an AoR is sip:user@domain)")

type errorString string

func (e errorString) Error() string { return string(e) }

// StoreKey is the storage and placement key of a normalised AoR: a fixed
// prefix plus 128 bits of SHA-256, which is always a valid memcached key
// (no spaces or control characters, far below 250 bytes) whatever the AoR
// holds. The record itself carries the AoR so repair can check it.
func StoreKey(aor string) string {
	sum := sha256.Sum256([]byte(aor))
	return keyPrefix + base64.RawURLEncoding.EncodeToString(sum[:16])
}

// keyPrefix marks locsvc's keys (and their format generation) in a shared
// memcached, so repair enumerates only what is ours.
const keyPrefix = "lsv1:"

// IsStoreKey reports whether a memcached key belongs to locsvc.
func IsStoreKey(key string) bool { return strings.HasPrefix(key, keyPrefix) }

// BindingID is the identity of a binding within its AoR: the RFC 5626
// instance and reg-id when both are present (a flow replaces its previous
// binding whatever its Contact), else the contact URI compared per RFC 3261
// §19.1.4.
func BindingID(contact, instance string, regID uint32) (string, error) {
	if instance != "" && regID != 0 {
		return flowPrefix + normalizeInstance(instance) + regIDParam + strconv.FormatUint(uint64(regID), 10), nil
	}
	u, err := sipuri.Parse(contact)
	if err != nil {
		return "", err
	}
	return u.Canonical(), nil
}

// SplitBindingID inverts BindingID: a contact, instance and reg-id from
// which BindingID derives id again. Callers that hold only an ID (a
// BindingRef) need them to name the binding where the contract names
// bindings as Lookup returns them. A flow's ID gives its instance, wrapped
// in angle brackets so that BindingID's normalisation strips exactly those,
// and its reg-id, but no contact (a flow's ID does not depend on it); any
// other ID is a canonical contact URI, its own ID.
func SplitBindingID(id string) (contact, instance string, regID uint32) {
	if rest, ok := strings.CutPrefix(id, flowPrefix); ok {
		if i := strings.LastIndex(rest, regIDParam); i >= 0 {
			digits := rest[i+len(regIDParam):]
			// Only the digits FormatUint writes: anything else was not
			// made by BindingID, and is left whole to match nothing.
			if n, err := strconv.ParseUint(digits, 10, 32); err == nil && n != 0 && strconv.FormatUint(n, 10) == digits {
				return "", "<" + rest[:i] + ">", uint32(n)
			}
		}
	}
	return id, "", 0
}

const (
	flowPrefix = "flow:"
	regIDParam = ";reg-id="
)

// normalizeInstance strips the quoting and brackets that +sip.instance
// values carry and lower-cases the URN, which compares case-insensitively.
func normalizeInstance(s string) string {
	s = strings.Trim(s, `"`)
	s = strings.TrimPrefix(s, "<")
	s = strings.TrimSuffix(s, ">")
	return strings.ToLower(s)
}

package locsvc

import "github.com/locsvc/locsvc/internal/sipuri"

// PercentEncode writes s with every byte that safe rejects as %XX
// (upper-case hex), so that one value has exactly one spelling. It stays
// exported for callers of locsvc; the grammar itself is internal/sipuri's.
func PercentEncode(s string, safe func(byte) bool) string {
	return sipuri.PercentEncode(s, safe)
}

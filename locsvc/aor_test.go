package locsvc

import (
	"strings"
	"testing"
)

func TestNormalizeAoR(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"sip:alice@example.com", "sip:alice@example.com"},
		{"sip:alice@EXAMPLE.com", "sip:alice@example.com"},
		{"sip:Alice@Example.COM", "sip:Alice@example.com"}, // user case kept
		{"sip:%61lice@EXAMPLE.com", "sip:alice@example.com"},
		{"sip:%61%6C%69%63%65@example.com", "sip:alice@example.com"},
		{"SIP:alice@example.com", "sip:alice@example.com"},
		{"sips:alice@example.com", "sip:alice@example.com"},
		{"sip:alice@example.com;user=phone;transport=tcp", "sip:alice@example.com"},
		{"sip:alice@example.com?subject=hi&priority=urgent", "sip:alice@example.com"},
		{"sip:alice@example.com;lr?x=y", "sip:alice@example.com"},
		{"sip:alice@example.com:5070", "sip:alice@example.com:5070"},
		{"sip:alice@example.com:5060", "sip:alice@example.com:5060"}, // an explicit port is not dropped
		{"sip:alice@[2001:DB8::1]", "sip:alice@[2001:db8::1]"},
		{"sip:alice@[2001:db8::1]:5061;transport=tls", "sip:alice@[2001:db8::1]:5061"},
		{"sip:alice@192.0.2.1", "sip:alice@192.0.2.1"},
		{"sip:alice:secret@example.com", "sip:alice@example.com"}, // password is not part of the AoR
		{"sip:alice%20smith@example.com", "sip:alice%20smith@example.com"},
		{"sip:a%3ab@example.com", "sip:a%3Ab@example.com"}, // one spelling for an escape that must stay escaped
		{"sip:%2B15551234@example.com", "sip:+15551234@example.com"},
		{"sip:+15551234@example.com;user=phone", "sip:+15551234@example.com"},
		{"sip:a%40b@example.com", "sip:a%40b@example.com"},
	}
	for _, tt := range tests {
		got, err := NormalizeAoR(tt.in)
		if err != nil {
			t.Errorf("NormalizeAoR(%q): unexpected error %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("NormalizeAoR(%q) = %q, want %q", tt.in, got, tt.want)
		}
		again, err := NormalizeAoR(got)
		if err != nil || again != got {
			t.Errorf("NormalizeAoR not idempotent on %q: %q, %v", got, again, err)
		}
	}
}

func TestNormalizeAoREquivalences(t *testing.T) {
	// Each group names one AoR.
	groups := [][]string{
		{"sip:alice@example.com", "sip:%61lice@EXAMPLE.com", "sips:alice@example.com", "sip:alice@Example.Com;transport=tcp", "sip:alice:pw@example.com?x=1"},
		{"sip:Alice@example.com", "sip:%41lice@example.com"},
		{"sip:alice@example.com:5060"},
	}
	seen := map[string]int{}
	for gi, g := range groups {
		for _, in := range g {
			got, err := NormalizeAoR(in)
			if err != nil {
				t.Fatalf("NormalizeAoR(%q): %v", in, err)
			}
			if prev, ok := seen[got]; ok && prev != gi {
				t.Errorf("%q normalises to %q, which group %d also has", in, got, prev)
			}
			seen[got] = gi
		}
	}
	if len(seen) != len(groups) {
		t.Errorf("want %d distinct AoRs, got %v", len(groups), seen)
	}
}

func TestNormalizeAoRRejects(t *testing.T) {
	tests := []string{
		"",
		"alice@example.com",       // no scheme
		"tel:+15551234",           // not sip
		"http://example.com/",     // not sip
		"sip:example.com",         // no user
		"sip:@example.com",        // empty user
		"sip:alice@",              // no host
		"sip:alice@:5060",         // no host
		"sip:%6@example.com",      // bad escape
		"sip:%zzlice@example.com", // bad escape
		"sip:alice%@example.com",  // bad escape
		"sip:alice@example.com:0", // bad port
		"sip:alice@example.com:65536",
		"sip:alice@example.com:abc",
		"sip:alice@example.com:+5060", // a port is digits only
		"sip:alice@example.com:",      // ":" needs a port
		"sip:alice@[::1]:",
		"sip:alice@example.com:-1",
		"sip:alice @example.com", // spaces and control characters
		" sip:alice@example.com",
		"sip:alice@example.com ",
		"sip:alice@exa\tmple.com",
		"sip:alice@example.com\r\n",
		"sip:alice\x00@example.com",
		"sip:alice\x7f@example.com",
		"sip:alicé@example.com", // raw non-ASCII
		"<sip:alice@example.com>",
		`"Alice" <sip:alice@example.com>`,
		"sip:alice@example.com>",
		"sip:alice@[::1",         // unterminated IPv6
		"sip:alice@[::1]x",       // junk after IPv6
		"sip:alice@[zz::1]",      // not hex
		"sip:alice@ex_ample.com", // '_' not in a host
		"sip:alice@example.com;", // empty parameter
		"sip:alice@example.com;;lr",
		"sip:alice@example.com?subject", // header without '='
		"sip:alice@example.com;maddr=%zz",
	}
	for _, in := range tests {
		if got, err := NormalizeAoR(in); err == nil {
			t.Errorf("NormalizeAoR(%q) = %q, want an error", in, got)
		}
	}
}

// validMemcachedKey is memcached's text-protocol rule: at most 250 bytes, no
// whitespace or control characters.
func validMemcachedKey(k string) bool {
	if k == "" || len(k) > 250 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

func TestStoreKey(t *testing.T) {
	aors := []string{
		"sip:alice@example.com",
		"sip:Alice@example.com",
		"sip:alice@example.com:5060",
		"sip:alice%20smith@example.com",
		"sip:" + strings.Repeat("x", 5000) + "@example.com",
		"",
		"with space\r\n\x00and control",
		"ünïcödé",
	}
	seen := map[string]string{}
	for _, aor := range aors {
		k := StoreKey(aor)
		if !validMemcachedKey(k) {
			t.Errorf("StoreKey(%.40q) = %q is not a valid memcached key", aor, k)
		}
		if !IsStoreKey(k) {
			t.Errorf("IsStoreKey(StoreKey(%.40q)) = false", aor)
		}
		if k2 := StoreKey(aor); k2 != k {
			t.Errorf("StoreKey not deterministic: %q, %q", k, k2)
		}
		if prev, ok := seen[k]; ok {
			t.Errorf("StoreKey collision: %.40q and %.40q -> %q", prev, aor, k)
		}
		seen[k] = aor
	}
	// One AoR, one key: the key is derived from the normalised form.
	a, _ := NormalizeAoR("sip:%61lice@EXAMPLE.com;transport=tcp")
	b, _ := NormalizeAoR("sip:alice@example.com")
	if StoreKey(a) != StoreKey(b) {
		t.Errorf("equivalent AoRs got different keys")
	}
	for _, k := range []string{"", "alice", "lsv0:abc", "LSV1:abc", "xlsv1:abc"} {
		if IsStoreKey(k) {
			t.Errorf("IsStoreKey(%q) = true", k)
		}
	}
}

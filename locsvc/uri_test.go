package locsvc

import (
	"strings"
	"testing"
)

func TestBindingIDEquality(t *testing.T) {
	tests := []struct {
		a, b  string
		equal bool
		why   string
	}{
		{"sip:alice@192.0.2.10:5060", "sip:alice@192.0.2.10:5060", true, "identical"},
		{"sip:alice@192.0.2.10:5060;transport=udp;lr", "sip:alice@192.0.2.10:5060;lr;transport=udp", true, "parameter order is irrelevant"},
		{"sip:alice@h;transport=udp;maddr=192.0.2.1", "sip:alice@h;maddr=192.0.2.1;transport=udp", true, "parameter order is irrelevant"},
		{"sip:alice@h;lr", "sip:alice@h", true, "lr is ignored"},
		{"sip:alice@h;ob", "sip:alice@h", true, "ob is ignored"},
		{"sip:alice@h;x-vendor=1;rinstance=abc", "sip:alice@h", true, "unknown parameters are ignored"},
		{"sip:alice@h;transport=tcp", "sip:alice@h", false, "transport present in one only"},
		{"sip:alice@h;transport=udp", "sip:alice@h", false, "transport=udp is not the same as no transport"},
		{"sip:alice@h;transport=tcp", "sip:alice@h;transport=udp", false, "transport differs"},
		{"sip:alice@h;transport=TCP", "sip:alice@h;transport=tcp", true, "parameter values compare case-insensitively"},
		{"sip:alice@h;TRANSPORT=tcp", "sip:alice@h;transport=tcp", true, "parameter names compare case-insensitively"},
		{"sip:alice@h;user=phone", "sip:alice@h", false, "user parameter is significant"},
		{"sip:alice@h;maddr=192.0.2.1", "sip:alice@h", false, "maddr is significant"},
		{"sip:alice@h;ttl=5", "sip:alice@h", false, "ttl is significant"},
		{"sip:alice@h;method=INVITE", "sip:alice@h", false, "method is significant"},
		{"sip:alice@h;method=INVITE", "sip:alice@h;method=invite", true, "method value case"},
		{"sip:alice@EXAMPLE.com", "sip:alice@example.com", true, "host is case-insensitive"},
		{"sip:Alice@example.com", "sip:alice@example.com", false, "user is case-sensitive"},
		{"sip:alice:PW@h", "sip:alice:pw@h", false, "password is case-sensitive"},
		{"sip:alice:pw@h", "sip:alice@h", false, "password present in one only"},
		{"sip:%61lice@h", "sip:alice@h", true, "escapes of unreserved characters"},
		{"sip:alice@h", "sip:alice@h:5060", false, "no port is not :5060"},
		{"sip:alice@h:5060", "sip:alice@h:5060", true, "same port"},
		{"sip:alice@h:5060", "sip:alice@h:5061", false, "port differs"},
		{"SIP:alice@h", "sip:alice@h", true, "scheme case"},
		{"sips:alice@h", "sip:alice@h", false, "sip and sips never match"},
		{"sip:alice@[2001:DB8::1]:5060", "sip:alice@[2001:db8::1]:5060", true, "IPv6 hex case"},
		{"sip:h", "sip:h", true, "no user part"},
		{"sip:h", "sip:alice@h", false, "user present in one only"},
		{"sip:alice@h?Subject=x", "sip:alice@h", false, "headers are never ignored"},
		{"sip:alice@h?a=1&b=2", "sip:alice@h?b=2&a=1", true, "header order"},
		{"sip:alice@h?a=1", "sip:alice@h?a=2", false, "header value differs"},
		// A parameter value holding an escaped ';' or '?' must not render like
		// two parameters or a header.
		{"sip:a@h;maddr=x%3Btransport=tcp", "sip:a@h;maddr=x;transport=tcp", false, "escaped ';' inside a parameter value"},
		{"sip:a@h;maddr=x%3Fy%3Dz", "sip:a@h;maddr=x?y=z", false, "escaped '?' inside a parameter value"},
		{"sip:a@h;maddr=%41", "sip:a@h;maddr=a", true, "escape in a value equals the character"},
	}
	for _, tt := range tests {
		ida, err := BindingID(tt.a, "", 0)
		if err != nil {
			t.Errorf("BindingID(%q): %v", tt.a, err)
			continue
		}
		idb, err := BindingID(tt.b, "", 0)
		if err != nil {
			t.Errorf("BindingID(%q): %v", tt.b, err)
			continue
		}
		if (ida == idb) != tt.equal {
			t.Errorf("%s: BindingID(%q)=%q, BindingID(%q)=%q, want equal=%v", tt.why, tt.a, ida, tt.b, idb, tt.equal)
		}
		// An ID is itself a URI with the same ID: it is the canonical form.
		for _, id := range []string{ida, idb} {
			if again, err := BindingID(id, "", 0); err != nil || again != id {
				t.Errorf("canonical form %q not stable: %q, %v", id, again, err)
			}
		}
	}
}

func TestBindingIDFlow(t *testing.T) {
	const inst = `"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"`
	id := func(uri, instance string, regID uint32) string {
		t.Helper()
		s, err := BindingID(uri, instance, regID)
		if err != nil {
			t.Fatalf("BindingID(%q, %q, %d): %v", uri, instance, regID, err)
		}
		return s
	}
	base := id("sip:alice@192.0.2.10:5060", inst, 1)
	if !strings.HasPrefix(base, "flow:") {
		t.Errorf("flow identity %q does not start with flow:", base)
	}
	tests := []struct {
		uri, instance string
		regID         uint32
		equal         bool
		why           string
	}{
		{"sip:alice@198.51.100.7:40000;transport=tcp", inst, 1, true, "a flow keeps its identity whatever its contact"},
		{"sip:alice@192.0.2.10:5060", "<urn:uuid:00000000-0000-1000-8000-aabbccddeeff>", 1, true, "instance without quotes, lower case"},
		{"sip:alice@192.0.2.10:5060", "urn:uuid:00000000-0000-1000-8000-aabbccddeeff", 1, true, "instance without brackets"},
		{"sip:alice@192.0.2.10:5060", inst, 2, false, "another reg-id is another flow"},
		{"sip:alice@192.0.2.10:5060", `"<urn:uuid:11111111-0000-1000-8000-aabbccddeeff>"`, 1, false, "another instance"},
		{"sip:alice@192.0.2.10:5060", inst, 0, false, "instance without reg-id: URI identity"},
		{"sip:alice@192.0.2.10:5060", "", 1, false, "reg-id without instance: URI identity"},
	}
	for _, tt := range tests {
		if got := id(tt.uri, tt.instance, tt.regID); (got == base) != tt.equal {
			t.Errorf("%s: %q vs %q, want equal=%v", tt.why, got, base, tt.equal)
		}
	}
	// Without both instance and reg-id the contact URI decides.
	if a, b := id("sip:alice@h", inst, 0), id("sip:alice@H;lr", "", 0); a != b {
		t.Errorf("instance without reg-id: %q != %q", a, b)
	}
	if _, err := BindingID("not a uri", "", 0); err == nil {
		t.Errorf("BindingID of an invalid URI without flow identity: want an error")
	}
}

// FuzzBindingID checks that parsing never panics and that the canonical form
// is a fixed point: it parses, and renders to itself.
func FuzzBindingID(f *testing.F) {
	for _, s := range []string{
		"sip:alice@example.com", "sips:a:b@[::1]:5061;transport=tls?x=y", "sip:a@h;maddr=x%3Bttl=1",
		"sip:%61@h;lr;ob", "sip:h?a=%3F&b=%26", "sip:a@h;user=phone;method=INVITE;ttl=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := BindingID(raw, "", 0)
		if err != nil {
			return
		}
		again, err := BindingID(id, "", 0)
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", id, raw, err)
		}
		if again != id {
			t.Fatalf("canonical of %q not stable: %q -> %q", raw, id, again)
		}
		if aor, err := NormalizeAoR(raw); err == nil {
			if again, err := NormalizeAoR(aor); err != nil || again != aor {
				t.Fatalf("NormalizeAoR(%q)=%q not stable: %q, %v", raw, aor, again, err)
			}
		}
	})
}

package sipuri

import "testing"

func TestParse(t *testing.T) {
	u, err := Parse("SIPS:Alice:Secret@Example.COM:5061;Transport=TLS;lr;maddr=%31.2.3.4?Subject=Hi%20there&X=1")
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "sips" || u.User != "Alice" || u.Password != "Secret" || !u.HasUser || u.Host != "example.com" || u.Port != 5061 {
		t.Errorf("parts: %+v", u)
	}
	if v, ok := u.Param("transport"); !ok || v != "TLS" {
		t.Errorf("transport = %q, %v", v, ok)
	}
	if v, ok := u.Param("lr"); !ok || v != "" {
		t.Errorf("lr = %q, %v", v, ok)
	}
	if v, ok := u.Param("maddr"); !ok || v != "1.2.3.4" {
		t.Errorf("maddr = %q, %v", v, ok)
	}
	if _, ok := u.Param("ttl"); ok {
		t.Errorf("ttl present")
	}
	if len(u.Headers) != 2 || u.Headers[0] != (URIParam{"subject", "Hi there"}) || u.Headers[1] != (URIParam{"x", "1"}) {
		t.Errorf("headers = %v", u.Headers)
	}
	if got, want := u.Canonical(), "sips:Alice:Secret@example.com:5061;maddr=1.2.3.4;transport=tls?subject=Hi%20there&x=1"; got != want {
		t.Errorf("canonical = %q, want %q", got, want)
	}
	if _, err := Parse(""); err != ErrEmpty {
		t.Errorf("empty: %v", err)
	}
}

func TestUnescape(t *testing.T) {
	if got, err := Unescape("a%41%3b"); err != nil || got != "aA;" {
		t.Errorf("Unescape = %q, %v", got, err)
	}
	for _, bad := range []string{"%", "%4", "%4g", "a%zz"} {
		if _, err := Unescape(bad); err == nil {
			t.Errorf("Unescape(%q): want an error", bad)
		}
		if got := UnescapeLax(bad); got != bad {
			t.Errorf("UnescapeLax(%q) = %q, want it unchanged", bad, got)
		}
	}
	if got := UnescapeLax("%61lice%"); got != "alice%" {
		t.Errorf("UnescapeLax = %q", got)
	}
	if got := PercentEncode("a b;c", UserSafe); got != "a%20b;c" {
		t.Errorf("PercentEncode = %q", got)
	}
}

func TestCharClasses(t *testing.T) {
	if !AllDigits("5060") || AllDigits("") || AllDigits("+5060") || AllDigits("50a") {
		t.Errorf("AllDigits")
	}
	for _, c := range []byte("aZ9-.!%*_+`'~") {
		if !IsToken(c) {
			t.Errorf("IsToken(%q) = false", c)
		}
	}
	for _, c := range []byte(" \"<>,;:@") {
		if IsToken(c) {
			t.Errorf("IsToken(%q) = true", c)
		}
	}
	if !IsHex('f') || !IsHex('F') || IsHex('g') || !IsAlnum('q') || IsAlnum('-') {
		t.Errorf("IsHex/IsAlnum")
	}
}

// FuzzCanonical checks that parsing never panics and that the canonical
// form is a fixed point: it parses, and renders to itself.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{
		"sip:alice@example.com", "sips:a:b@[::1]:5061;transport=tls?x=y", "sip:a@h;maddr=x%3Bttl=1",
		"sip:%61@h;lr;ob", "sip:h?a=%3F&b=%26", "sip:a@h;user=phone;method=INVITE;ttl=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := Parse(raw)
		if err != nil {
			return
		}
		c := u.Canonical()
		again, err := Parse(c)
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", c, raw, err)
		}
		if got := again.Canonical(); got != c {
			t.Fatalf("canonical of %q not stable: %q -> %q", raw, c, got)
		}
	})
}

package core

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDigestResponseVectors(t *testing.T) {
	tests := []struct {
		name                                           string
		alg                                            Algorithm
		user, realm, pass, nonce, nc, cnonce, qop, uri string
		want                                           string
	}{
		// RFC 2617 §3.5.
		{"rfc2617", MD5, "Mufasa", "testrealm@host.com", "Circle Of Life", "dcd98b7102dd2f0e8b11d0f600bfb0c093",
			"00000001", "0a4f113b", "auth", "/dir/index.html", "6629fae49393a05397450978507c4ef1"},
		// RFC 7616 §3.9.1, MD5 and SHA-256.
		{"rfc7616 md5", MD5, "Mufasa", "http-auth@example.org", "Circle of Life", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
			"00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "auth", "/dir/index.html", "8ca523f5e9506fed4657c9700eebdbec"},
		{"rfc7616 sha-256", SHA256, "Mufasa", "http-auth@example.org", "Circle of Life", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
			"00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "auth", "/dir/index.html",
			"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ha1, err := HA1(tt.user, tt.realm, tt.pass, tt.alg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DigestResponse(tt.alg, ha1, tt.nonce, tt.nc, tt.cnonce, tt.qop, "GET", tt.uri)
			if err != nil || got != tt.want {
				t.Errorf("response = %s, %v; want %s", got, err, tt.want)
			}
		})
	}
	// RFC 2069 form (no qop), as computed by hand from its definition.
	ha1, _ := HA1("Mufasa", "testrealm@host.com", "Circle Of Life", MD5)
	ha2, _ := hexHash(MD5, "GET:/dir/index.html")
	want, _ := hexHash(MD5, ha1+":dcd98b7102dd2f0e8b11d0f600bfb0c093:"+ha2)
	if got, _ := DigestResponse(MD5, ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "", "", "", "GET", "/dir/index.html"); got != want {
		t.Errorf("no-qop response %s, want %s", got, want)
	}
	if _, err := HA1("a", "b", "c", "SHA-512"); err == nil {
		t.Error("HA1 accepted an unknown algorithm")
	}
}

func TestParseAuthorization(t *testing.T) {
	tests := []struct {
		in     string
		digest bool
		err    string
		check  func(credentials) bool
	}{
		{`Digest username="alice", realm="example.com", nonce="n1", uri="sip:example.com", response="ABCDEF", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="c1"`,
			true, "", func(c credentials) bool {
				return c.Username == "alice" && c.Realm == "example.com" && c.Response == "abcdef" && c.Algorithm == SHA256 &&
					c.QOP == "auth" && c.NC == "00000001" && c.CNonce == "c1"
			}},
		{`Digest username="a\"b",realm="r",nonce="n",uri="sip:x",response="r"`, true, "", func(c credentials) bool {
			return c.Username == `a"b` && c.Algorithm == MD5 && c.QOP == ""
		}},
		{`Basic YWxhZGRpbjpvcGVuc2VzYW1l`, false, "", nil},
		{`Digest username="a", realm="r", nonce="n", uri="sip:x"`, true, "missing response", nil},
		{`Digest username="a", realm="r", nonce="n", uri="sip:x", response="r", algorithm=MD5-sess`, true, "unsupported digest algorithm", nil},
		{`Digest username="a", realm="r", nonce="n", uri="sip:x", response="r", qop=auth-int, nc=1, cnonce="c"`, true, "unsupported qop", nil},
		{`Digest username="a", realm="r", nonce="n", uri="sip:x", response="r", qop=auth`, true, "without cnonce", nil},
		{`Digest username="a", username="b", realm="r", nonce="n", uri="sip:x", response="r"`, true, "given twice", nil},
		{`Digest username="a, realm="r"`, true, "", nil}, // unterminated: some error
		{`Digest =x`, true, "unexpected", nil},
	}
	for _, tt := range tests {
		c, digest, err := parseAuthorization(tt.in)
		if digest != tt.digest {
			t.Errorf("%s: digest=%v", tt.in, digest)
			continue
		}
		switch {
		case tt.check != nil:
			if err != nil || !tt.check(c) {
				t.Errorf("%s: %+v, %v", tt.in, c, err)
			}
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err %v, want %q", tt.in, err, tt.err)
			}
		case tt.digest && tt.err == "" && tt.check == nil:
			if err == nil {
				t.Errorf("%s: accepted", tt.in)
			}
		}
	}
}

func TestNonces(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	n := &nonces{key: []byte("0123456789abcdef"), realm: "example.com", lifetime: 5 * time.Minute, now: func() time.Time { return now }}
	nonce := n.issue()
	if got := n.check(nonce); got != nonceFresh {
		t.Fatalf("fresh nonce: %v", got)
	}
	other := &nonces{key: []byte("0123456789abcdef"), realm: "example.com", lifetime: 5 * time.Minute, now: n.now}
	if got := other.check(nonce); got != nonceFresh {
		t.Errorf("a farm sharing the key rejects the nonce: %v", got)
	}
	wrongKey := &nonces{key: []byte("fedcba9876543210"), realm: "example.com", lifetime: 5 * time.Minute, now: n.now}
	wrongRealm := &nonces{key: n.key, realm: "other.org", lifetime: 5 * time.Minute, now: n.now}
	for name, x := range map[string]*nonces{"key": wrongKey, "realm": wrongRealm} {
		if got := x.check(nonce); got != nonceInvalid {
			t.Errorf("wrong %s: %v", name, got)
		}
	}
	for _, bad := range []string{"", "x", nonce[:len(nonce)-1], nonce + "A", strings.Repeat("A", len(nonce)), "!" + nonce[1:]} {
		if got := n.check(bad); got != nonceInvalid {
			t.Errorf("check(%q) = %v", bad, got)
		}
	}
	now = now.Add(5*time.Minute - time.Second)
	if got := n.check(nonce); got != nonceFresh {
		t.Errorf("within lifetime: %v", got)
	}
	now = now.Add(2 * time.Second)
	if got := n.check(nonce); got != nonceStale {
		t.Errorf("past lifetime: %v", got)
	}
	now = now.Add(-20 * time.Minute)
	if got := n.check(nonce); got != nonceStale {
		t.Errorf("from far ahead: %v", got)
	}
}

func TestParseCredentials(t *testing.T) {
	md5ha1, _ := HA1("alice", "example.com", "secret", MD5)
	shaha1, _ := HA1("alice", "example.com", "secret", SHA256)
	good := "# users\n\nalice:example.com:" + md5ha1 + "\n  alice:example.com:" + strings.ToUpper(shaha1) + "  \nbob:example.com:" + md5ha1 + "\n"
	c, err := ParseCredentials(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := c.HA1("alice", "example.com", SHA256); !ok || h != shaha1 {
		t.Errorf("SHA-256 HA1 = %q, %v", h, ok)
	}
	if _, ok := c.HA1("bob", "example.com", SHA256); ok {
		t.Error("bob has no SHA-256 entry")
	}
	if c.Len() != 3 || fmt.Sprint(c.Algorithms()) != "[SHA-256 MD5]" {
		t.Errorf("len %d algorithms %v", c.Len(), c.Algorithms())
	}
	onlyMD5, _ := ParseCredentials(strings.NewReader("bob:r:" + md5ha1))
	if fmt.Sprint(onlyMD5.Algorithms()) != "[MD5]" {
		t.Errorf("algorithms %v", onlyMD5.Algorithms())
	}
	for _, bad := range []string{
		"alice:example.com",
		"alice:example.com:abc",
		"alice:example.com:" + strings.Repeat("g", 32),
		":example.com:" + md5ha1,
		"a:b:c:" + md5ha1,
		"alice:r:" + md5ha1 + "\nalice:r:" + md5ha1,
	} {
		if _, err := ParseCredentials(strings.NewReader(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	line, err := CredentialLine("alice", "example.com", "secret", SHA256)
	if err != nil || line != "alice:example.com:"+shaha1 {
		t.Errorf("CredentialLine = %q, %v", line, err)
	}
	if _, err := CredentialLine("a:b", "r", "p", MD5); err == nil {
		t.Error("CredentialLine accepted ':' in the user")
	}
}

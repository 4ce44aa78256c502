package sipfront

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
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
			got, err := digestResponse(tt.alg, ha1, tt.nonce, tt.nc, tt.cnonce, tt.qop, "GET", tt.uri)
			if err != nil || got != tt.want {
				t.Errorf("response = %s, %v; want %s", got, err, tt.want)
			}
		})
	}
	// RFC 2069 form (no qop), as computed by hand from its definition.
	ha1, _ := HA1("Mufasa", "testrealm@host.com", "Circle Of Life", MD5)
	ha2, _ := hexHash(MD5, "GET:/dir/index.html")
	want, _ := hexHash(MD5, ha1+":dcd98b7102dd2f0e8b11d0f600bfb0c093:"+ha2)
	if got, _ := digestResponse(MD5, ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "", "", "", "GET", "/dir/index.html"); got != want {
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

// authEnv is a server requiring digest auth: alice has MD5 and SHA-256
// entries, bob only MD5.
func authEnv(t *testing.T, mutate func(*Config)) *env {
	t.Helper()
	var lines []string
	for _, l := range []struct {
		user string
		alg  Algorithm
	}{{"alice", MD5}, {"alice", SHA256}, {"bob", MD5}} {
		line, _ := CredentialLine(l.user, "example.com", l.user+"-pw", l.alg)
		lines = append(lines, line)
	}
	creds, err := ParseCredentials(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return startEnv(t, func(c *Config) {
		c.Credentials = creds
		c.NonceKey = []byte("a shared farm key, 32 bytes long")
		if mutate != nil {
			mutate(c)
		}
	})
}

// challenges returns the parsed WWW-Authenticate headers of a 401.
func challenges(t *testing.T, res *sip.Response) []map[string]string {
	t.Helper()
	var out []map[string]string
	for _, v := range values(res, "WWW-Authenticate") {
		if !strings.HasPrefix(v, "Digest ") {
			t.Fatalf("challenge %q", v)
		}
		p, err := parseAuthParams(v[len("Digest "):])
		if err != nil {
			t.Fatalf("challenge %q: %v", v, err)
		}
		out = append(out, p)
	}
	return out
}

// authorization answers a challenge.
func authorization(user, pass, realm, nonce, uri, method string, alg Algorithm) string {
	ha1, _ := HA1(user, realm, pass, alg)
	resp, _ := digestResponse(alg, ha1, nonce, "00000001", "cn0nce", "auth", method, uri)
	return fmt.Sprintf(`Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, qop=auth, nc=00000001, cnonce="cn0nce"`,
		user, realm, nonce, uri, resp, alg)
}

func TestDigestRegister(t *testing.T) {
	e := authEnv(t, nil)
	c := e.udpClient()
	contact := "Contact: <sip:alice@192.0.2.1>"

	res := c.do(msg{hdrs: []string{contact}})
	wantCode(t, res, 401)
	ch := challenges(t, res)
	if len(ch) != 2 || ch[0]["algorithm"] != "SHA-256" || ch[1]["algorithm"] != "MD5" {
		t.Fatalf("challenges %v", ch)
	}
	for _, x := range ch {
		if x["realm"] != "example.com" || x["qop"] != "auth" || x["nonce"] == "" || x["stale"] != "" {
			t.Errorf("challenge %v", x)
		}
	}
	nonce := ch[0]["nonce"]
	if n := len(e.live("sip:alice@example.com")); n != 0 {
		t.Fatalf("stored before auth: %d", n)
	}

	cseq := 1
	next := func() string { cseq++; return fmt.Sprintf("%d REGISTER", cseq) }
	for _, alg := range []Algorithm{SHA256, MD5} {
		res = c.do(msg{cseq: next(), hdrs: []string{contact, authorization("alice", "alice-pw", "example.com", nonce, "sip:example.com", "REGISTER", alg)}})
		wantCode(t, res, 200)
	}
	if n := len(e.live("sip:alice@example.com")); n != 1 {
		t.Fatalf("stored %d", n)
	}
	// A digest uri naming this registrar rather than the Request-URI (a
	// proxy in front rewrote it; sipp's default) is taken for REGISTER.
	res = c.do(msg{cseq: next(), hdrs: []string{contact, authorization("alice", "alice-pw", "example.com", nonce, "sip:"+e.srv.Addr(), "REGISTER", MD5)}})
	wantCode(t, res, 200)

	refused := []struct {
		name   string
		auth   string
		m      msg
		code   int
		reason string
	}{
		{"wrong password", authorization("alice", "nope", "example.com", nonce, "sip:example.com", "REGISTER", MD5), msg{}, 403, "Forbidden"},
		{"unknown user", authorization("mallory", "x", "example.com", nonce, "sip:example.com", "REGISTER", MD5), msg{to: "<sip:mallory@example.com>"}, 403, "Forbidden"},
		{"no HA1 for the algorithm", authorization("bob", "bob-pw", "example.com", nonce, "sip:example.com", "REGISTER", SHA256), msg{to: "<sip:bob@example.com>"}, 403, "Forbidden"},
		{"someone else's AoR", authorization("bob", "bob-pw", "example.com", nonce, "sip:example.com", "REGISTER", MD5), msg{}, 403, "Username Does Not Match AoR"},
		{"uri mismatch", authorization("alice", "alice-pw", "example.com", nonce, "sip:other.com", "REGISTER", MD5), msg{}, 400, "Digest URI Does Not Match"},
		{"other realm only", authorization("alice", "alice-pw", "other.com", nonce, "sip:example.com", "REGISTER", MD5), msg{}, 401, "Unauthorized"},
		{"malformed", "Authorization: Digest username=\"alice\"", msg{}, 400, "Malformed Authorization Header"},
		{"foreign nonce, right password", authorization("alice", "alice-pw", "example.com", (&nonces{key: []byte("another key, 16+ bytes"), realm: "example.com", now: time.Now}).issue(), "sip:example.com", "REGISTER", MD5), msg{}, 401, "Unauthorized"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.m
			m.cseq = next()
			m.hdrs = []string{contact, tt.auth}
			res := c.do(m)
			wantCode(t, res, tt.code)
			if !strings.Contains(res.Reason, tt.reason) {
				t.Errorf("reason %q, want %q", res.Reason, tt.reason)
			}
			if tt.name == "foreign nonce, right password" {
				if ch := challenges(t, res); len(ch) != 2 || ch[0]["stale"] != "true" {
					t.Errorf("want stale=true: %v", ch)
				}
			}
		})
	}
	if b := e.live("sip:alice@example.com"); len(b) != 1 || b[0].CSeq != 4 {
		t.Errorf("refused requests changed bindings: %+v", b)
	}
}

func TestDigestStaleNonce(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	e := authEnv(t, func(c *Config) {
		c.NonceLifetime = time.Minute
		c.now = func() time.Time { return time.Unix(0, clock.Load()) }
	})
	c := e.udpClient()
	res := c.do(msg{hdrs: []string{"Contact: <sip:alice@192.0.2.1>"}})
	nonce := challenges(t, res)[0]["nonce"]

	clock.Add(int64(2 * time.Minute))
	res = c.do(msg{cseq: "2 REGISTER", hdrs: []string{"Contact: <sip:alice@192.0.2.1>",
		authorization("alice", "alice-pw", "example.com", nonce, "sip:example.com", "REGISTER", SHA256)}})
	wantCode(t, res, 401)
	ch := challenges(t, res)
	if ch[0]["stale"] != "true" || ch[0]["nonce"] == nonce {
		t.Fatalf("stale challenge %v", ch)
	}
	// A stale nonce with a wrong password is simply refused.
	res = c.do(msg{cseq: "3 REGISTER", hdrs: []string{"Contact: <sip:alice@192.0.2.1>",
		authorization("alice", "bad", "example.com", nonce, "sip:example.com", "REGISTER", SHA256)}})
	wantCode(t, res, 403)
	res = c.do(msg{cseq: "4 REGISTER", hdrs: []string{"Contact: <sip:alice@192.0.2.1>",
		authorization("alice", "alice-pw", "example.com", ch[0]["nonce"], "sip:example.com", "REGISTER", SHA256)}})
	wantCode(t, res, 200)
}

func TestDigestTrustedAndScope(t *testing.T) {
	e := authEnv(t, func(c *Config) { c.Trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	c := e.udpClient()
	wantCode(t, c.do(msg{hdrs: []string{"Contact: <sip:alice@192.0.2.1>"}}), 200)

	// Only REGISTER is authenticated by default.
	e = authEnv(t, nil)
	c = e.udpClient()
	wantCode(t, c.do(msg{method: "INVITE", ruri: "sip:alice@example.com"}), 404)
	wantCode(t, c.do(msg{method: "OPTIONS"}), 200)

	// AuthAll: redirected requests too, with the From user.
	e = authEnv(t, func(c *Config) { c.AuthAll = true })
	c = e.udpClient()
	res := c.do(msg{method: "INVITE", ruri: "sip:bob@example.com"})
	wantCode(t, res, 401)
	nonce := challenges(t, res)[0]["nonce"]
	auth := authorization("alice", "alice-pw", "example.com", nonce, "sip:bob@example.com", "INVITE", MD5)
	wantCode(t, c.do(msg{method: "INVITE", ruri: "sip:bob@example.com", cseq: "2 INVITE", hdrs: []string{auth}}), 404)
	wantCode(t, c.do(msg{method: "INVITE", ruri: "sip:bob@example.com", cseq: "3 INVITE", from: "<sip:carol@example.com>;tag=x", hdrs: []string{auth}}), 403)
}

func TestLoadNonceKeyAndRealm(t *testing.T) {
	dir := t.TempDir()
	good, short := dir+"/good", dir+"/short"
	os.WriteFile(good, []byte("  0123456789abcdef0123\n"), 0o600)
	os.WriteFile(short, []byte("tooshort\n"), 0o600)
	if k, err := LoadNonceKey(good); err != nil || string(k) != "0123456789abcdef0123" {
		t.Errorf("LoadNonceKey = %q, %v", k, err)
	}
	if _, err := LoadNonceKey(short); err == nil {
		t.Error("short key accepted")
	}
	// The realm is the first domain as given; domains compare in lower case.
	s, err := New(&fakeLocator{}, Config{Addr: "127.0.0.1:0", Domains: []string{" Example.COM ", "b.org"}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.realm != "Example.COM" || !s.served("EXAMPLE.com") || !s.served("b.org") {
		t.Errorf("realm %q, domains %q", s.cfg.realm, s.cfg.Domains)
	}
}

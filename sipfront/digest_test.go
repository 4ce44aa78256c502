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

	"github.com/locsvc/locsvc/sipfront/internal/core"
)

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
		p, err := core.ParseAuthParams(v[len("Digest "):])
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
	resp, _ := core.DigestResponse(alg, ha1, nonce, "00000001", "cn0nce", "auth", method, uri)
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
		{"foreign nonce, right password", authorization("alice", "alice-pw", "example.com", core.NewNonce([]byte("another key, 16+ bytes"), "example.com", time.Now()), "sip:example.com", "REGISTER", MD5), msg{}, 401, "Unauthorized"},
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

func TestLoadKeyAndRealm(t *testing.T) {
	dir := t.TempDir()
	good, short := dir+"/good", dir+"/short"
	os.WriteFile(good, []byte("  0123456789abcdef0123\n"), 0o600)
	os.WriteFile(short, []byte("tooshort\n"), 0o600)
	if k, err := LoadKey(good); err != nil || string(k) != "0123456789abcdef0123" {
		t.Errorf("LoadKey = %q, %v", k, err)
	}
	if _, err := LoadKey(short); err == nil {
		t.Error("short key accepted")
	}
	// The realm is the first domain as given; domains compare in lower case.
	s, err := New(&fakeLocator{}, Config{Addr: "127.0.0.1:0", Domains: []string{" Example.COM ", "b.org"}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.realm != "Example.COM" || !s.core.Served("EXAMPLE.com") || !s.core.Served("b.org") {
		t.Errorf("realm %q, domains %q", s.cfg.realm, s.cfg.Domains)
	}
}

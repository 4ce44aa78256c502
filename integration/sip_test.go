package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/sipfront"
)

// The registrar over UDP and TCP, driven by sipp: each step asserts the
// response code in its scenario, then the stored bindings here.
func TestSIPRegistrarSipp(t *testing.T) {
	d := startSIPNode(t, "--sip-mode", "registrar", "--domain", "localhost", "--min-expires", "60", "--max-contacts", "3")
	for _, tp := range []string{"udp", "tcp"} {
		t.Run(tp, func(t *testing.T) {
			user := "alice-" + tp
			aor := "sip:" + user + "@localhost"
			contact := func(port int) string { return fmt.Sprintf("<sip:%s@127.0.0.1:%d>", user, port) }
			reg := func(scenario string, cseq int, contactHdr, expires string) {
				t.Helper()
				MustSipp(t, SippRun{Scenario: scenario, Target: d.SIP, TCP: tp == "tcp", CallID: "reg-" + user + "@%s",
					Keys: map[string]string{"domain": "localhost", "user": user, "seq": fmt.Sprint(cseq),
						"contact": contactHdr, "expires": expires}})
			}
			check := func(step string, want ...string) []*locsvcv1.Binding {
				t.Helper()
				bs := d.Bindings(t, aor)
				var got []string
				for _, b := range bs {
					got = append(got, b.Uri)
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("after %s: bindings %q, want %q", step, got, want)
				}
				return bs
			}
			uri := func(port int) string { return fmt.Sprintf("sip:%s@127.0.0.1:%d", user, port) }

			reg("register_200.xml", 1, contact(5071), "3600")
			b := check("add", uri(5071))[0]
			if b.Transport != tp || b.Cseq != 1 || b.Expires < 3590 || b.Expires > 3600 || len(b.Path) != 0 ||
				!strings.HasPrefix(b.Received, "127.0.0.1:") || b.UserAgent != "sipp" || b.CallId != "reg-"+user+"@127.0.0.1" {
				t.Errorf("stored %+v", b)
			}

			reg("register_200.xml", 2, contact(5071), "1800")
			if b := check("refresh", uri(5071))[0]; b.Cseq != 2 || b.Expires > 1800 || b.Expires < 1790 {
				t.Errorf("after refresh %+v", b)
			}

			MustSipp(t, SippRun{Scenario: "register_query.xml", Target: d.SIP, TCP: tp == "tcp", CallID: "reg-" + user + "@%s",
				Keys: map[string]string{"domain": "localhost", "user": user, "seq": "3"}})
			check("query", uri(5071))

			reg("register_200.xml", 4, contact(5072)+";q=0.5", "3600")
			check("second contact", uri(5071), uri(5072))

			reg("register_500.xml", 2, contact(5071), "3600") // CSeq 2 < 4 for a stored binding: out of order
			check("out-of-order CSeq", uri(5071), uri(5072))

			reg("register_423.xml", 5, contact(5073), "10")
			check("423", uri(5071), uri(5072))

			reg("register_403.xml", 6, contact(5073)+", "+contact(5074), "3600") // 4 > max 3
			check("too many contacts", uri(5071), uri(5072))

			reg("register_200.xml", 7, contact(5072)+";expires=0", "3600")
			check("remove", uri(5071))

			reg("register_400.xml", 8, "<sip:"+user+"@127.0.0.1:5075", "3600") // no '>'
			check("malformed", uri(5071))
			sendGarbage(t, d.SIP)
			reg("register_200.xml", 9, contact(5076), "3600") // still serving
			check("after malformed", uri(5071), uri(5076))

			reg("register_200.xml", 10, "*", "0")
			check("wildcard")
		})
	}
	page := Scrape(t, d)
	metric := func(name string) float64 {
		t.Helper()
		for _, l := range strings.Split(page, "\n") {
			if v, ok := strings.CutPrefix(l, name+" "); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					t.Fatalf("metric %s: %v", name, err)
				}
				return f
			}
		}
		return 0
	}
	if metric(`locsvc_sip_events_total{kind="panic"}`) != 0 ||
		metric(`locsvc_sip_events_total{kind="parse_error"}`)+metric(`locsvc_sip_events_total{kind="dropped"}`) == 0 ||
		metric(`locsvc_sip_responses_total{code="400"}`) == 0 || metric(`locsvc_sip_responses_total{code="500"}`) == 0 {
		t.Errorf("SIP metrics after the registrar run:\n%s", page)
	}
	stopSIPNode(t, d)
}

// Digest authentication with sipp's [authentication] (MD5: sipp 3.6
// answers nothing else, so the credentials file holds MD5 HA1s only and
// the challenge offers only MD5).
func TestSIPDigestSipp(t *testing.T) {
	dir := t.TempDir()
	line, err := sipfront.CredentialLine("alice", "localhost", "s3cret", sipfront.MD5)
	if err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(dir, "credentials")
	if err := os.WriteFile(creds, []byte("# test users\n"+line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startSIPNode(t, "--sip-mode", "registrar", "--domain", "localhost", "--credentials", creds)
	keys := func(user string) map[string]string {
		return map[string]string{"domain": "localhost", "user": user, "seq": "1",
			"contact": "<sip:" + user + "@127.0.0.1:5071>", "expires": "3600"}
	}

	// No credentials: challenged, so the plain scenario fails on the 401.
	res := RunSipp(t, SippRun{Scenario: "register_200.xml", Target: d.SIP, Keys: keys("alice")})
	if res.ExitCode == 0 || !strings.Contains(res.Errors, "401") {
		t.Fatalf("unauthenticated REGISTER: exit %d\n%s", res.ExitCode, res.Errors)
	}
	if n := len(d.Bindings(t, "sip:alice@localhost")); n != 0 {
		t.Fatalf("unauthenticated REGISTER stored %d bindings", n)
	}

	for _, tp := range []string{"udp", "tcp"} {
		MustSipp(t, SippRun{Scenario: "register_auth.xml", Target: d.SIP, TCP: tp == "tcp", Keys: keys("alice"),
			Args: []string{"-au", "alice", "-ap", "s3cret"}})
	}
	if n := len(d.Bindings(t, "sip:alice@localhost")); n != 1 {
		t.Fatalf("authenticated REGISTER: %d bindings", n)
	}

	// A wrong password and an unknown user get the same 403.
	MustSipp(t, SippRun{Scenario: "register_auth_403.xml", Target: d.SIP, Keys: keys("alice"),
		Args: []string{"-au", "alice", "-ap", "wrong"}})
	MustSipp(t, SippRun{Scenario: "register_auth_403.xml", Target: d.SIP, Keys: keys("mallory"),
		Args: []string{"-au", "mallory", "-ap", "s3cret"}})
	if n := len(d.Bindings(t, "sip:mallory@localhost")); n != 0 {
		t.Fatalf("unknown user stored %d bindings", n)
	}
	stopSIPNode(t, d)

	// A trusted source (a proxy in front) skips the challenge.
	d = startSIPNode(t, "--sip-mode", "registrar", "--domain", "localhost", "--credentials", creds, "--trusted", "127.0.0.0/8")
	MustSipp(t, SippRun{Scenario: "register_200.xml", Target: d.SIP, Keys: keys("bob")})
	if n := len(d.Bindings(t, "sip:bob@localhost")); n != 1 {
		t.Fatalf("trusted REGISTER: %d bindings", n)
	}
	stopSIPNode(t, d)
}

// The redirect server: an INVITE gets a 302 listing the contacts in q
// order (no Route: a redirect server stores no Path entry of its own); an
// unknown user gets 404.
func TestSIPRedirectSipp(t *testing.T) {
	d := startSIPNode(t, "--sip-mode", "redirect", "--domain", "localhost")
	MustSipp(t, SippRun{Scenario: "register_200.xml", Target: d.SIP, Keys: map[string]string{
		"domain": "localhost", "user": "alice", "seq": "1", "expires": "3600",
		"contact": "<sip:alice@127.0.0.1:5072>;q=0.5, <sip:alice@127.0.0.1:5071>"}})
	for _, tcp := range []bool{false, true} {
		MustSipp(t, SippRun{Scenario: "invite_302.xml", Target: d.SIP, TCP: tcp, Keys: map[string]string{"domain": "localhost"}})
		MustSipp(t, SippRun{Scenario: "invite_404.xml", Target: d.SIP, TCP: tcp, Keys: map[string]string{"domain": "localhost", "user": "nobody"}})
	}
	stopSIPNode(t, d)
}

// sendGarbage sends what no SIP parser accepts, over UDP and TCP.
func sendGarbage(t *testing.T, addr string) {
	t.Helper()
	for _, network := range []string{"udp", "tcp"} {
		c, err := net.Dial(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range []string{"\x00\x01garbage\r\n\r\n", "REGISTER sip:localhost SIP/2.0\r\nVia: nonsense\r\n\r\n",
			"GET / HTTP/1.1\r\nHost: x\r\n\r\n", strings.Repeat("A", 70000)} {
			c.Write([]byte(g))
		}
		c.Close()
	}
}

// startSIPNode starts a `locsvc serve` node (in-process store) with its
// SIP front end on a free loopback port and the given flags.
func startSIPNode(t *testing.T, args ...string) *Node {
	t.Helper()
	return StartNode(t, NodeOptions{ID: "sip", Args: args})
}

// Bindings returns the AoR's current bindings through the node's gRPC
// Lookup.
func (n *Node) Bindings(t testing.TB, aor string) []*locsvcv1.Binding {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := n.Location.Lookup(ctx, &locsvcv1.LookupRequest{Aor: aor})
	if err != nil {
		t.Fatalf("Lookup %s: %v", aor, err)
	}
	return res.Bindings
}

// stopSIPNode checks that the node still answers (over SIP and HTTP),
// stops it with SIGTERM and checks it left cleanly, with no panic
// recovered or data race seen along the way.
func stopSIPNode(t *testing.T, n *Node) {
	t.Helper()
	if err := waitHTTPWith(context.Background(), n.HTTPClient, n.HTTPBase+"/readyz", 5*time.Second); err != nil {
		t.Errorf("node not ready before stop: %v", err)
	}
	MustSipp(t, SippRun{Scenario: "options.xml", Target: n.SIP, Keys: map[string]string{"domain": "localhost"}})
	if err := n.Stop(10 * time.Second); err != nil {
		t.Fatalf("node stop: %v\n%s", err, n.Output())
	}
	out := n.Output()
	if !strings.Contains(out, "msg=stopped") || strings.Contains(out, "panic") || strings.Contains(out, "DATA RACE") {
		t.Errorf("node did not stop cleanly:\n%s", out)
	}
}

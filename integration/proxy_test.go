package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/locsvc/locsvc/sipfront"
)

// Proxy mode, driven by sipp against real `locsvc serve` processes: a sipp
// UAS waits on its own port, its contact is registered through the front
// end, and a sipp UAC calls it through the front end.

// startProxyNode starts a node in proxy mode on an in-process store.
func startProxyNode(t *testing.T, id string, args ...string) *Node {
	t.Helper()
	return StartNode(t, NodeOptions{ID: id, Args: append([]string{"--sip-mode", "proxy", "--domain", "localhost"}, args...)})
}

// registerUAS registers sip:user@127.0.0.1:port (with extra contact
// parameters) through front end target, from a sipp on another port.
func registerUAS(t *testing.T, target, user string, port int, params string) {
	t.Helper()
	MustSipp(t, SippRun{Scenario: "register_200.xml", Target: target, Keys: map[string]string{
		"domain": "localhost", "user": user, "seq": "1", "expires": "3600",
		"contact": fmt.Sprintf("<sip:%s@127.0.0.1:%d>%s", user, port, params)}})
}

// goUAS starts a sipp UAS scenario on a free port and returns the port and
// the function that waits for it.
func goUAS(t *testing.T, scenario string, keys map[string]string) (int, func() SippResult) {
	t.Helper()
	port := FreePort(t)
	wait := GoSipp(t, SippRun{Scenario: scenario, Port: port, Keys: keys, Wait: 15 * time.Second})
	time.Sleep(200 * time.Millisecond) // let it bind before anything is sent its way
	return port, wait
}

// stopProxyNode checks the node still answers and stops it cleanly.
func stopProxyNode(t *testing.T, n *Node) {
	t.Helper()
	stopSIPNode(t, n)
}

// A registered sipp UAS is called through the proxy: INVITE, 180, 200, ACK
// and BYE all cross the node (Record-Route). Over TCP the caller's side
// of the call changes transport at the node (double Record-Route).
func TestProxyCall(t *testing.T) {
	n := startProxyNode(t, "proxy")
	for _, tcp := range []bool{false, true} {
		user := fmt.Sprintf("bob-tcp-%v", tcp)
		port, uas := goUAS(t, "proxy_uas.xml", map[string]string{"user": user})
		registerUAS(t, n.SIP, user, port, "")
		if bs := n.Bindings(t, "sip:"+user+"@localhost"); len(bs) != 1 {
			t.Fatalf("bindings %v", bs)
		}
		uac := MustSipp(t, SippRun{Scenario: "proxy_uac.xml", Target: n.SIP, TCP: tcp, Keys: map[string]string{"domain": "localhost", "user": user}})
		MustWait(t, "proxy_uas.xml", uas)
		want := "Record-Route: <sip:" + n.SIP + ";lr>"
		if tcp {
			// The caller's side names its TCP connection (a flow token),
			// so that the callee's requests in the dialog come back on it.
			want = "@" + n.SIP + ";lr;ob;transport=tcp>"
		}
		if !strings.Contains(uac.Messages, want) {
			t.Errorf("no %q in the UAC's messages:\n%s", want, uac.Messages)
		}
	}
	// An unknown user gets 404.
	MustSipp(t, SippRun{Scenario: "invite_404.xml", Target: n.SIP, Keys: map[string]string{"domain": "localhost", "user": "nobody"}})
	stopProxyNode(t, n)
}

// With credentials and --sip-auth-all, REGISTER is challenged 401 and
// INVITE 407 (Proxy-Authenticate); both pass with the right password.
func TestProxyDigest(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	for _, user := range []string{"frank", "grace"} {
		l, err := sipfront.CredentialLine(user, "localhost", "s3cret-"+user, sipfront.MD5)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	creds := filepath.Join(dir, "credentials")
	if err := os.WriteFile(creds, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startProxyNode(t, "proxy", "--credentials", creds, "--sip-auth-all")
	port, uas := goUAS(t, "proxy_uas.xml", map[string]string{"user": "frank"})
	MustSipp(t, SippRun{Scenario: "register_auth.xml", Target: n.SIP, Args: []string{"-au", "frank", "-ap", "s3cret-frank"},
		Keys: map[string]string{"domain": "localhost", "user": "frank", "expires": "3600",
			"contact": fmt.Sprintf("<sip:frank@127.0.0.1:%d>", port)}})
	// Unauthenticated, the call is refused with 407.
	res := RunSipp(t, SippRun{Scenario: "proxy_uac.xml", Target: n.SIP, Keys: map[string]string{"domain": "localhost", "user": "frank"}})
	if res.ExitCode == 0 || !strings.Contains(res.Messages, "407 Proxy Authentication Required") ||
		!strings.Contains(res.Messages, "Proxy-Authenticate: Digest") {
		t.Fatalf("unauthenticated INVITE: exit %d\n%s", res.ExitCode, res.Messages)
	}
	// sipp's digest uri defaults to sip:REMOTE_IP:PORT; for requests other
	// than REGISTER the node wants the Request-URI (-auth_uri).
	auth := func(password string) SippRun {
		return SippRun{Scenario: "proxy_uac_auth.xml", Target: n.SIP,
			Args: []string{"-au", "grace", "-ap", password, "-auth_uri", "frank@localhost"},
			Keys: map[string]string{"domain": "localhost", "user": "frank", "caller": "grace"}}
	}
	if res := RunSipp(t, auth("wrong")); res.ExitCode == 0 || !strings.Contains(res.Messages, "SIP/2.0 403 Forbidden") {
		t.Fatalf("wrong password: exit %d\n%s", res.ExitCode, res.Messages)
	}
	MustSipp(t, auth("s3cret-grace"))
	MustWait(t, "proxy_uas.xml", uas)
	stopProxyNode(t, n)
}

// The caller hangs up while the callee rings: the node answers the CANCEL
// 200 and the INVITE 487, and cancels the branch, which the callee answers
// 487.
func TestProxyCancel(t *testing.T) {
	n := startProxyNode(t, "proxy")
	port, uas := goUAS(t, "proxy_uas_cancel.xml", map[string]string{"user": "carol"})
	registerUAS(t, n.SIP, "carol", port, "")
	MustSipp(t, SippRun{Scenario: "proxy_uac_cancel.xml", Target: n.SIP, Keys: map[string]string{"domain": "localhost", "user": "carol"}})
	MustWait(t, "proxy_uas_cancel.xml", uas)
	stopProxyNode(t, n)
}

// Two contacts of one AoR, q=1.0 and q=0.5: the q=1.0 one is tried first
// and refuses (486), then the q=0.5 one answers and the call completes
// with it (sequential forking by q).
func TestProxyForkByQ(t *testing.T) {
	n := startProxyNode(t, "proxy")
	busyPort, busy := goUAS(t, "proxy_uas_busy.xml", nil)
	okPort, ok := goUAS(t, "proxy_uas.xml", map[string]string{"user": "dave"})
	registerUAS(t, n.SIP, "dave", busyPort, ";q=1.0")
	registerUAS(t, n.SIP, "dave", okPort, ";q=0.5")
	if bs := n.Bindings(t, "sip:dave@localhost"); len(bs) != 2 {
		t.Fatalf("bindings %v", bs)
	}
	uac := GoSipp(t, SippRun{Scenario: "proxy_uac.xml", Target: n.SIP, Keys: map[string]string{"domain": "localhost", "user": "dave"}})
	MustWait(t, "proxy_uas_busy.xml", busy)
	MustWait(t, "proxy_uac.xml", uac)
	MustWait(t, "proxy_uas.xml", ok)
	stopProxyNode(t, n)
}

// The farm: two proxy nodes sharing two memcached. The UAS registers
// through node A, so its binding's Path names A; the UAC calls through
// node B, which sends the INVITE to A (calls go home), which relays it to
// the UAS. ACK and BYE follow the Record-Route set B, A.
func TestFarmCallGoesHome(t *testing.T) {
	shards := []*Memcached{StartMemcached(t), StartMemcached(t)}
	common := []string{"--sip-mode", "proxy", "--domain", "localhost", "--replicas", "2", "--gossip-profile", "local"}
	a := StartNode(t, NodeOptions{ID: "nodeA", Args: append([]string{"--memcached", shards[0].Addr}, common...)})
	b := StartNode(t, NodeOptions{ID: "nodeB", Args: append([]string{"--memcached", shards[1].Addr, "--join", a.Gossip}, common...)})
	c := &Cluster{t: t, Shards: shards, Nodes: []*Node{a, b}}
	c.WaitMembers(2)

	port, uas := goUAS(t, "proxy_uas.xml", map[string]string{"user": "erin"})
	registerUAS(t, a.SIP, "erin", port, "")
	home := "sip:" + a.SIP + ";lr"
	WaitFor(t, 10*time.Second, "node B sees erin's binding homed on A", func() bool {
		bs := b.Bindings(t, "sip:erin@localhost")
		return len(bs) == 1 && len(bs[0].Path) == 1 && bs[0].Path[0] == home
	})
	uac := MustSipp(t, SippRun{Scenario: "proxy_uac.xml", Target: b.SIP, Keys: map[string]string{"domain": "localhost", "user": "erin"}})
	res := MustWait(t, "proxy_uas.xml", uas)
	// The UAS got the INVITE from A, having crossed B first: both nodes'
	// Vias and Record-Routes, A on top.
	for _, want := range []string{"Record-Route: <sip:" + a.SIP + ";lr>", "Record-Route: <sip:" + b.SIP + ";lr>"} {
		if !strings.Contains(res.Messages, want) {
			t.Errorf("UAS messages lack %q:\n%s", want, res.Messages)
		}
	}
	if ia, ib := strings.Index(res.Messages, "Via: SIP/2.0/UDP "+a.SIP), strings.Index(res.Messages, "Via: SIP/2.0/UDP "+b.SIP); ia < 0 || ib < 0 || ia > ib {
		t.Errorf("UAS INVITE does not show the path B -> A (Via of A at %d, of B at %d):\n%s", ia, ib, res.Messages)
	}
	_ = uac
	stopProxyNode(t, b)
	stopProxyNode(t, a)
}

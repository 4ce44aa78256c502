package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/internal/testcerts"
)

// Two nodes, each fronting a TLS-only memcached that requires client
// certificates, R=2: what is registered through one node is found through
// the other and lies on both shards; both shards are healthy in
// /v1/status. A shard restarted empty is refilled by repair, which lists
// the other shard's keys (lru_crawler metadump) and copies the records,
// all over TLS.
func TestMemcachedTLSCluster(t *testing.T) {
	certs := testcerts.Generate(t)
	c := StartClusterTLS(t, 2, certs)
	const users = 300
	if failed := RegisterMany(t, c.Nodes[0], 0, users, 16); failed != 0 {
		t.Fatalf("%d of %d registrations over TLS failed", failed, users)
	}
	if failed := LookupMany(t, c.Nodes[1], 0, users, 16); failed != 0 {
		t.Fatalf("%d of %d lookups over TLS failed", failed, users)
	}
	keys, full := Keys(0, users), c.Ring()
	if n, err := c.UnderReplicated(full, keys, 2); err != nil || n != 0 {
		t.Fatalf("%d records not on both shards (%v)", n, err)
	}
	for _, n := range c.Nodes {
		for addr, healthy := range shardHealth(t, n) {
			if !healthy {
				t.Errorf("%s's /v1/status: shard %s unhealthy", n.ID, addr)
			}
		}
	}

	c.Shards[1].Restart()
	restarted := time.Now()
	WaitFor(t, 30*time.Second, "every record back on both TLS shards", func() bool {
		n, err := c.UnderReplicated(full, keys, 2)
		return err == nil && n == 0
	})
	t.Logf("R=2 restored over TLS %v after the shard came back empty", time.Since(restarted).Round(time.Millisecond))
	if failed := LookupMany(t, c.Nodes[0], 0, users, 16); failed != 0 {
		t.Fatalf("after repair: %d lookups failed", failed)
	}
}

// A node without --memcached-tls-* cannot use a TLS-only shard and says
// so: the shard it fronts is unhealthy in its /v1/status and its peer's,
// its log names the flags to set, and its calls to the TLS shard its peer
// fronts fail, with the reason in its log. Naming the client certificate
// without the CA is refused at start (exit 2).
func TestMemcachedTLSMissingOnNode(t *testing.T) {
	certs := testcerts.Generate(t)
	out, err := exec.Command(LocsvcBinary(t), "serve", "--sip", "", "--memcached", "127.0.0.1:1",
		"--memcached-tls-cert", certs.ClientCert, "--memcached-tls-key", certs.ClientKey).CombinedOutput()
	var ee *exec.ExitError
	if !asExit(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "need --memcached-tls-ca") {
		t.Errorf("client certificate without CA: err=%v output=%q; want exit 2 naming --memcached-tls-ca", err, out)
	}

	a, b := StartMemcachedTLS(t, certs), StartMemcachedTLS(t, certs)
	common := []string{"--replicas", "1", "--gossip-profile", "local"}
	withTLS := StartNode(t, NodeOptions{ID: "tls", NoSIP: true,
		Args: append(append([]string{"--memcached", a.Addr}, common...), MemcachedTLSArgs(certs)...)})
	// Ready all the same: the ring has a healthy shard, a.
	plain := StartNode(t, NodeOptions{ID: "plain", NoSIP: true,
		Args: append([]string{"--memcached", b.Addr, "--join", withTLS.Gossip}, common...)})

	WaitFor(t, 10*time.Second, "the plain node to log that its shard is unhealthy", func() bool {
		return strings.Contains(plain.Output(), "memcached shard unhealthy")
	})
	line := grepLines(plain.Output(), "memcached shard unhealthy")
	for _, want := range []string{b.Addr, "closed the connection without answering", "TLS-only",
		"set --memcached-tls-ca, --memcached-tls-cert and --memcached-tls-key"} {
		if !strings.Contains(line, want) {
			t.Errorf("the plain node's log does not say %q:\n%s", want, line)
		}
	}
	WaitFor(t, 10*time.Second, "both nodes' /v1/status to show the TLS node's shard healthy and the plain node's not", func() bool {
		for _, n := range []*Node{withTLS, plain} {
			h := shardHealth(t, n)
			if len(h) != 2 || !h[a.Addr] || h[b.Addr] {
				return false
			}
		}
		return true
	})

	register := func(n *Node, i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := n.Location.Register(ctx, &locsvcv1.RegisterRequest{
			Aor: AoR(i), CallId: fmt.Sprintf("call-%d", i), Cseq: 1, Expires: proto.Int64(3600),
			Contacts: []*locsvcv1.Contact{{Uri: Contact(i)}},
		})
		return err
	}
	if err := register(withTLS, 1); err != nil {
		t.Fatalf("register through the TLS node: %v", err)
	}
	err = register(plain, 2)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("register through the plain node (its only healthy shard is TLS-only): %v, want Unavailable", err)
	}
	// A few more, for the breaker to open and say why.
	for i := range 3 {
		_ = register(plain, 3+i)
	}
	WaitFor(t, 5*time.Second, "the plain node to log why the TLS node's shard fails its calls", func() bool {
		l := grepLines(plain.Output(), "memcached shard failing")
		return strings.Contains(l, a.Addr) && strings.Contains(l, "TLS-only")
	})
}

// --memcached-tls-ca, -cert and -key are re-read when they change: once
// the shard and the files both move to another CA's certificates, the
// node's new connections use the new files and it serves again, without
// a restart.
func TestMemcachedTLSReload(t *testing.T) {
	first, second := testcerts.Generate(t), testcerts.Generate(t)
	dir := t.TempDir()
	ca, cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	install := func(c *testcerts.Certs) {
		for from, to := range map[string]string{c.CAFile: ca, c.ClientCert: cert, c.ClientKey: key} {
			b, err := os.ReadFile(from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(to, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(first)
	m := StartMemcachedTLS(t, first)
	n := StartNode(t, NodeOptions{NoSIP: true, Args: []string{"--memcached", m.Addr, "--replicas", "1",
		"--gossip-profile", "local", "--memcached-tls-ca", ca, "--memcached-tls-cert", cert, "--memcached-tls-key", key}})
	if failed := RegisterMany(t, n, 0, 10, 4); failed != 0 {
		t.Fatalf("%d registrations failed with the first certificates", failed)
	}
	// The files are renewed, and the shard, which reads its own only at
	// start, restarts with the new ones: the old CA no longer verifies it.
	install(second)
	m.TLS = second
	m.Restart()
	WaitFor(t, 20*time.Second, "registrations through the node over the renewed certificates", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := n.Location.Register(ctx, &locsvcv1.RegisterRequest{
			Aor: AoR(10), CallId: "call-renewed", Cseq: 1, Expires: proto.Int64(3600),
			Contacts: []*locsvcv1.Contact{{Uri: Contact(10)}},
		})
		return err == nil
	})
	for _, want := range []string{"TLS CA bundle reloaded", "TLS certificate reloaded"} {
		if !strings.Contains(n.Output(), want) {
			t.Errorf("the node's log does not say %q", want)
		}
	}
	if has, err := m.Has(Keys(10, 11)); err != nil || !has[Keys(10, 11)[0]] {
		t.Errorf("the registration made over the renewed certificates is not on the shard: %v", err)
	}
}

// shardHealth is each shard's health in the node's /v1/status.
func shardHealth(t *testing.T, n *Node) map[string]bool {
	t.Helper()
	var st locsvcv1.StatusResponse
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal([]byte(httpGet(t, n.HTTPBase+"/v1/status")), &st); err != nil {
		t.Fatalf("%s's /v1/status: %v", n.ID, err)
	}
	out := make(map[string]bool, len(st.Shards))
	for _, s := range st.Shards {
		out[s.Addr] = s.Healthy
	}
	return out
}

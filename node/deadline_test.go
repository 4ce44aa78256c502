package node_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/locsvc/locsvc/integration"
	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/node"
)

// silentShardNode is a node fronting two memcached shards with one replica
// a key, the second of which is then stopped (SIGSTOP): a TCP listener
// that accepts and never answers, while the ring still counts it healthy.
// Its memcached timeout is long, so that only the caller's deadline can
// end a call on the silent shard before its health check gives up on it.
func silentShardNode(t *testing.T, sip bool) (*node.Node, *integration.Memcached) {
	t.Helper()
	healthy, silent := integration.StartMemcached(t), integration.StartMemcached(t)
	cfg := testConfig("n", healthy.Addr, silent.Addr)
	cfg.Replicas = 1
	cfg.MemcachedTimeout = 3 * time.Second
	if sip {
		cfg.SIP, cfg.SIPMode, cfg.SIPRequestTimeout = "127.0.0.1:0", "registrar", 300*time.Millisecond
		cfg.RegisterRate = 0
	}
	n := start(t, cfg)
	integration.WaitFor(t, 10*time.Second, "both shards healthy", func() bool { return healthyShards(n) == 2 })
	if err := silent.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Before the memcached process is stopped for good.
	t.Cleanup(func() { _ = silent.Signal(syscall.SIGCONT) })
	return n, silent
}

func binding(i int) locsvc.Request {
	return locsvc.Request{AoR: fmt.Sprintf("sip:user%d@example.com", i), CallID: fmt.Sprintf("c%d", i), CSeq: 1,
		Contacts: []locsvc.Contact{{URI: fmt.Sprintf("sip:user%d@192.0.2.1:5060", i)}}, Expires: 3600, HasExpires: true}
}

// TestDeadlineReachesTheWire: a gRPC Register whose 100 ms deadline ends
// while its shard is silent fails with DEADLINE_EXCEEDED at once (not
// after the 3 s memcached timeout), stores nothing, and the same Register
// with an ordinary deadline then succeeds on the healthy shard.
//
// The test fails if the deadline stops at the API: the call left running
// on the server would store the binding on the healthy shard seconds
// later.
func TestDeadlineReachesTheWire(t *testing.T) {
	n, _ := silentShardNode(t, false)
	c := client(t, n)
	stuck := -1
	// About half the AoRs live on the silent shard; the others succeed at
	// once. The health check needs seconds to give up on the shard.
	for i := 0; i < 40 && stuck < 0; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		began := time.Now()
		_, err := c.Register(ctx, binding(i))
		took := time.Since(began)
		cancel()
		if err == nil {
			continue
		}
		if code := status.Code(err); code != codes.DeadlineExceeded && code != codes.Unavailable {
			t.Fatalf("register %d: %v, want DEADLINE_EXCEEDED or UNAVAILABLE", i, err)
		}
		if took > 200*time.Millisecond {
			t.Fatalf("register %d failed after %v: the 100 ms deadline did not bound the store call", i, took)
		}
		stuck = i
	}
	if stuck < 0 {
		t.Fatal("no Register met the silent shard")
	}
	// The client gives up at its deadline whatever the server does; what
	// shows that the server gave up too is that nothing lands later, when
	// a store call left running would have fallen over to the healthy
	// shard after the memcached timeout.
	time.Sleep(3*time.Second + 500*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Lookup(ctx, binding(stuck).AoR)
	if err != nil {
		t.Fatalf("lookup after the failed register: %v", err)
	}
	if len(res.Bindings) != 0 {
		t.Fatalf("the failed register stored %v", res.Bindings)
	}
	if _, err := c.Register(ctx, binding(stuck)); err != nil {
		t.Fatalf("register with a normal deadline: %v", err)
	}
	if res, err = c.Lookup(ctx, binding(stuck).AoR); err != nil || len(res.Bindings) != 1 {
		t.Fatalf("lookup after the second register: %v, %v", res.Bindings, err)
	}
}

// TestSIPDeadlineFromArrival: through SIP, a REGISTER whose shard is
// silent is answered within the request timeout (300 ms here), with 503.
func TestSIPDeadlineFromArrival(t *testing.T) {
	n, _ := silentShardNode(t, true)
	conn, err := net.Dial("udp", n.SIPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	for i := 0; i < 40; i++ {
		user := fmt.Sprintf("user%d", i)
		msg := strings.Join([]string{
			"REGISTER sip:localhost SIP/2.0",
			"Via: SIP/2.0/UDP " + local + fmt.Sprintf(";branch=z9hG4bK-deadline-%d", i),
			"Max-Forwards: 70",
			"From: <sip:" + user + "@localhost>;tag=1",
			"To: <sip:" + user + "@localhost>",
			fmt.Sprintf("Call-ID: deadline-%d", i),
			"CSeq: 1 REGISTER",
			"Contact: <sip:" + user + "@" + local + ">",
			"Expires: 3600",
			"Content-Length: 0", "", ""}, "\r\n")
		began := time.Now()
		if _, err := conn.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		code, err := finalStatus(conn, 2*time.Second)
		took := time.Since(began)
		if err != nil {
			t.Fatalf("REGISTER %s: %v", user, err)
		}
		if code == 200 {
			continue
		}
		if code != 503 {
			t.Fatalf("REGISTER %s: %d, want 200 or 503", user, code)
		}
		if took > 450*time.Millisecond {
			t.Fatalf("REGISTER %s answered after %v, past the 300 ms request timeout", user, took)
		}
		return
	}
	t.Fatal("no REGISTER met the silent shard")
}

// finalStatus reads responses until a final one and returns its code.
func finalStatus(conn net.Conn, wait time.Duration) (int, error) {
	buf := make([]byte, 65535)
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return 0, err
		}
		var code int
		if _, err := fmt.Sscanf(string(buf[:n]), "SIP/2.0 %d", &code); err != nil {
			return 0, errors.New("not a response: " + string(buf[:min(n, 80)]))
		}
		if code >= 200 {
			return code, nil
		}
	}
}

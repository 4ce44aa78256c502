package integration

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/locsvc/locsvc/api/locsvcv1"
)

// Node is a `locsvc serve` process on free loopback ports.
type Node struct {
	*Proc
	ID       string
	GRPC     string
	HTTP     string
	SIP      string
	Gossip   string
	conn     *grpc.ClientConn
	Location locsvcv1.LocationServiceClient
	Cluster  locsvcv1.ClusterServiceClient
}

// NodeOptions adds flags to a node; the address flags are filled in.
type NodeOptions struct {
	ID    string
	Args  []string // extra flags
	Env   []string
	NoSIP bool
	// Bench runs the binary built without the race detector.
	Bench bool
}

// StartNode starts a node and waits until /readyz answers 200.
func StartNode(t testing.TB, o NodeOptions) *Node {
	t.Helper()
	if o.ID == "" {
		o.ID = "node1"
	}
	n := &Node{ID: o.ID, GRPC: FreeAddr(t), HTTP: FreeAddr(t), Gossip: FreeAddr(t)}
	if !o.NoSIP {
		n.SIP = FreeAddr(t)
	}
	args := append([]string{"serve", "--node-id", o.ID, "--grpc", n.GRPC, "--http", n.HTTP,
		"--gossip", n.Gossip, "--sip", n.SIP}, o.Args...)
	bin := LocsvcBinary
	if o.Bench {
		bin = LocsvcBenchBinary
	}
	n.Proc = Start(t, "locsvc "+o.ID, bin(t), o.Env, args...)
	if err := WaitHTTP(context.Background(), "http://"+n.HTTP+"/readyz", 20*time.Second); err != nil {
		t.Fatalf("node %s not ready: %v\n%s", o.ID, err, n.Output())
	}
	conn, err := grpc.NewClient(n.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	n.conn = conn
	n.Location = locsvcv1.NewLocationServiceClient(conn)
	n.Cluster = locsvcv1.NewClusterServiceClient(conn)
	return n
}

// Scrape returns the node's /metrics page.
func Scrape(t testing.TB, n *Node) string {
	t.Helper()
	resp, err := http.Get("http://" + n.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %v %s", err, resp.Status)
	}
	return string(body)
}

package integration

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/locsvc/locsvc/api"
	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/internal/testcerts"
)

// Node is a `locsvc serve` process on free loopback ports.
type Node struct {
	*Proc
	ID     string
	GRPC   string
	HTTP   string
	SIP    string
	Gossip string
	// HTTPBase is "http://" or, for a TLS node, "https://" and the --http
	// address; HTTPClient reaches it (with the client certificate for an
	// mTLS node).
	HTTPBase   string
	HTTPClient *http.Client
	// APITokenFile is the node's --api-token file (NodeOptions.APIToken),
	// for clients the test runs itself; "" without a token.
	APITokenFile string
	conn         *grpc.ClientConn
	Location     locsvcv1.LocationServiceClient
	Cluster      locsvcv1.ClusterServiceClient
}

// NodeOptions adds flags to a node; the address flags are filled in.
type NodeOptions struct {
	ID    string
	Args  []string // extra flags
	Env   []string
	NoSIP bool
	// Bench runs the binary built without the race detector.
	Bench bool
	// TLS serves gRPC and HTTP over TLS with TLS's server certificate;
	// MTLS also requires client certificates signed by its CA. The node's
	// clients (Location, Cluster, HTTPClient) use the CA and, with MTLS,
	// the client certificate.
	TLS  *testcerts.Certs
	MTLS bool
	// Fixed addresses, e.g. to restart a node where it was (memberlist
	// takes a dead member back only at its old address); empty: free
	// ports picked now.
	GRPC, HTTP, SIP, Gossip string
	// Host runs the node inside a host of StartHosts: its addresses
	// default to the host's address and the usual ports (the namespace is
	// the node's own), and the node's clients reach it through the host.
	Host *Host
	// Wildcard binds the node's listeners to 0.0.0.0 on the ports of its
	// addresses, which stay what the test reaches it at. The node must
	// then be told what to advertise (Args).
	Wildcard bool
	// APIToken, when set, is written to a file the node gets as
	// --api-token; the node's clients (Location, Cluster, HTTPClient)
	// send it.
	APIToken string
}

// NewAPIToken is a fresh API token.
func NewAPIToken() string { return fmt.Sprintf("test-token-%016x%016x", rand.Uint64(), rand.Uint64()) }

// withToken sends an API token with every request of the client it is
// the transport of.
type withToken struct {
	token string
	next  http.RoundTripper
}

func (w withToken) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+w.token)
	return w.next.RoundTrip(r)
}

// defaultPorts are a host's node's ports (NodeOptions.Host).
var defaultPorts = struct{ grpc, http, sip, gossip int }{7070, 8080, 5060, 7946}

// orFree is addr, or a free loopback address when it is empty.
func orFree(t testing.TB, addr string) string {
	if addr == "" {
		return FreeAddr(t)
	}
	return addr
}

// StartNode starts a node and waits until /readyz answers 200.
func StartNode(t testing.TB, o NodeOptions) *Node {
	t.Helper()
	if o.ID == "" {
		o.ID = "node1"
	}
	// A port found free can be taken by another test's process before the
	// node binds it; then the node exits at once and is started again on
	// newly picked ports (only those the caller left to us).
	for attempt := 1; ; attempt++ {
		n, inUse := startNodeOnce(t, o)
		if n != nil {
			return n
		}
		if attempt == 3 {
			t.Fatalf("node %s exited before it was ready, %d times on ports in use:\n%s", o.ID, attempt, inUse)
		}
		t.Logf("node %s: a port was taken before it bound it; starting it again on other ports", o.ID)
	}
}

// startNodeOnce is StartNode's one attempt. It returns nil and the node's
// output when the node exited because a port it was given was in use and
// at least one of its addresses was picked here.
func startNodeOnce(t testing.TB, o NodeOptions) (*Node, string) {
	t.Helper()
	addr := func(fixed string, port int) string {
		switch {
		case fixed != "":
			return fixed
		case o.Host != nil:
			return o.Host.HostPort(port)
		}
		return FreeAddr(t)
	}
	n := &Node{ID: o.ID, GRPC: addr(o.GRPC, defaultPorts.grpc), HTTP: addr(o.HTTP, defaultPorts.http),
		Gossip: addr(o.Gossip, defaultPorts.gossip)}
	if !o.NoSIP {
		n.SIP = addr(o.SIP, defaultPorts.sip)
	}
	picked := o.Host == nil && (o.GRPC == "" || o.HTTP == "" || o.Gossip == "" || (!o.NoSIP && o.SIP == ""))
	bind := func(a string) string {
		if !o.Wildcard || a == "" {
			return a
		}
		_, port, _ := net.SplitHostPort(a)
		return net.JoinHostPort("0.0.0.0", port)
	}
	// Overload control is off unless a test turns it on: a race-built
	// node on a busy two-core machine can stall past its window, and a
	// 503 would fail the tests that count every answer.
	args := append([]string{"serve", "--node-id", o.ID, "--grpc", bind(n.GRPC), "--http", bind(n.HTTP),
		"--gossip", bind(n.Gossip), "--sip", bind(n.SIP), "--overload-target", "0"}, o.Args...)
	n.HTTPBase = "http://" + n.HTTP
	transport := &http.Transport{}
	creds := insecure.NewCredentials()
	if o.TLS != nil {
		args = append(args, "--tls-cert", o.TLS.ServerCert, "--tls-key", o.TLS.ServerKey)
		if o.MTLS {
			args = append(args, "--tls-client-ca", o.TLS.CAFile)
		}
		conf := o.TLS.ClientTLS(t, o.MTLS)
		n.HTTPBase = "https://" + n.HTTP
		transport.TLSClientConfig = conf
		creds = credentials.NewTLS(conf)
	}
	dialOpts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if h := o.Host; h != nil {
		transport.DialContext = h.DialContext
		dialOpts = append(dialOpts, grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			return h.DialContext(ctx, "tcp", a)
		}))
	}
	n.HTTPClient = &http.Client{Transport: transport}
	if o.APIToken != "" {
		n.APITokenFile = filepath.Join(t.TempDir(), "api-token")
		if err := os.WriteFile(n.APITokenFile, []byte(o.APIToken+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--api-token", n.APITokenFile)
		dialOpts = append(dialOpts, grpc.WithPerRPCCredentials(api.BearerToken(func() string { return o.APIToken })))
		n.HTTPClient.Transport = withToken{o.APIToken, transport}
	}
	if o.TLS != nil {
		n.HTTPClient.Timeout = 5 * time.Second
	}
	t.Cleanup(n.HTTPClient.CloseIdleConnections)
	bin := LocsvcBinary
	if o.Bench {
		bin = LocsvcBenchBinary
	}
	if o.Host != nil {
		n.Proc = o.Host.Start(t, "locsvc "+o.ID, bin(t), o.Env, args...)
	} else {
		n.Proc = Start(t, "locsvc "+o.ID, bin(t), o.Env, args...)
	}
	// A node that refuses its flags exits at once: say so then, rather
	// than after the whole wait.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-n.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := waitHTTPWith(ctx, n.HTTPClient, n.HTTPBase+"/readyz", 20*time.Second)
	cancel()
	if n.Exited() {
		if picked && strings.Contains(n.Output(), "address already in use") {
			return nil, n.Output()
		}
		t.Fatalf("node %s exited before it was ready:\n%s", o.ID, n.Output())
	}
	if err != nil {
		t.Fatalf("node %s not ready: %v\n%s", o.ID, err, n.Output())
	}
	conn, err := grpc.NewClient(n.GRPC, dialOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	n.conn = conn
	n.Location = locsvcv1.NewLocationServiceClient(conn)
	n.Cluster = locsvcv1.NewClusterServiceClient(conn)
	return n, ""
}

// Scrape returns the node's /metrics page.
func Scrape(t testing.TB, n *Node) string {
	t.Helper()
	resp, err := n.HTTPClient.Get(n.HTTPBase + "/metrics")
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

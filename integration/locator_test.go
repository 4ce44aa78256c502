package integration

import (
	"context"
	"testing"
	"time"

	"github.com/locsvc/locsvc/api/locsvcv1"
)

// A SIP front end with no store of its own (--locator) registers into a
// remote node over gRPC, and the remote node's refusals come back as the
// same SIP answers an in-process front end would send.
func TestSIPFrontEndAgainstRemoteNode(t *testing.T) {
	store := StartNode(t, NodeOptions{ID: "store", NoSIP: true})
	front := StartNode(t, NodeOptions{ID: "front", Args: []string{
		"--locator", "grpc://" + store.GRPC, "--sip-mode", "registrar", "--domain", "localhost"}})
	reg := func(scenario string, seq, expires string) {
		t.Helper()
		MustSipp(t, SippRun{Scenario: scenario, Target: front.SIP, CallID: "reg-remote@%s",
			Keys: map[string]string{"domain": "localhost", "user": "remote", "seq": seq,
				"contact": "<sip:remote@127.0.0.1:5090>", "expires": expires}})
	}
	reg("register_200.xml", "1", "3600")
	res, err := store.Location.Lookup(context.Background(), &locsvcv1.LookupRequest{Aor: "sip:remote@localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Bindings) != 1 || res.Bindings[0].Uri != "sip:remote@127.0.0.1:5090" || res.Bindings[0].UserAgent != "sipp" {
		t.Fatalf("the remote node holds %v", res.Bindings)
	}
	// 423 with Min-Expires and 500 for an old CSeq, decided remotely.
	reg("register_423.xml", "2", "10")
	reg("register_500.xml", "1", "3600")
	if err := front.Stop(10 * time.Second); err != nil {
		t.Fatalf("front end SIGTERM: %v", err)
	}
}

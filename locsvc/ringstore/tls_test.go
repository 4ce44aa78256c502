package ringstore_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/locsvc/locsvc/integration"
	"github.com/locsvc/locsvc/internal/testcerts"
	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/locsvc/ringstore"
)

// Over TLS-only shards (client certificates required), with Config.Dial
// the one way in: writes land on both replicas, the probe reads the
// epoch, and a repair pass lists the keys of a shard (lru_crawler
// metadump) and refills a shard restarted empty.
func TestStoreOverTLS(t *testing.T) {
	certs := testcerts.Generate(t)
	ms := []*integration.Memcached{integration.StartMemcachedTLS(t, certs), integration.StartMemcachedTLS(t, certs)}
	dial := ms[0].Dial()
	src := &staticRing{}
	src.set(ms...)
	st := ringstore.New(src, ringstore.Config{Replicas: 2, Dial: dial})
	defer st.Close()
	const n = 100
	key := func(i int) string { return locsvc.StoreKey(fmt.Sprintf("sip:t%d@example.com", i)) }
	for i := range n {
		register(t, st, fmt.Sprintf("sip:t%d@example.com", i), "sip:t@192.0.2.1", 1)
	}
	for i := range n {
		if got := holders(t, key(i), ms); len(got) != 2 {
			t.Fatalf("record %d on %v, want both shards", i, got)
		}
	}
	if epoch, err := ringstore.Probe(context.Background(), dial, ms[0].Addr, time.Second); err != nil || epoch == 0 {
		t.Fatalf("probe over TLS: %d, %v", epoch, err)
	}

	ms[0].Restart()
	rep := st.NewRepairer([]string{ms[1].Addr}, 100000, time.Hour)
	rep.Pass(context.Background())
	for i := range n {
		if got := holders(t, key(i), ms); !got[ms[0].Addr] {
			t.Fatalf("record %d not back on the restarted shard after a pass over TLS (failures %d)", i, rep.Stats().Failures)
		}
	}
	if s := rep.Stats(); s.Scanned != n || s.Copied != n {
		t.Errorf("pass scanned %d and copied %d, want %d and %d", s.Scanned, s.Copied, n, n)
	}
}

// Each way a node and a shard can disagree about TLS fails the probe with
// an error that names the shard and can be told apart, so that the node
// can say what to fix.
func TestProbeTLSMismatch(t *testing.T) {
	certs, other := testcerts.Generate(t), testcerts.Generate(t)
	tlsShard, plainShard := integration.StartMemcachedTLS(t, certs), integration.StartMemcached(t)
	dialWith := func(conf *tls.Config) ringstore.DialFunc {
		return ringstore.Dialer(func() *tls.Config { return conf })
	}
	rogue, err := tls.LoadX509KeyPair(certs.RogueCert, certs.RogueKey)
	if err != nil {
		t.Fatal(err)
	}
	withRogue := certs.ClientTLS(t, false)
	withRogue.Certificates = []tls.Certificate{rogue}
	remoteError := func(err error) bool {
		var op *net.OpError
		return errors.As(err, &op) && op.Op == "remote error"
	}
	for _, tc := range []struct {
		name  string
		dial  ringstore.DialFunc
		shard *integration.Memcached
		is    func(error) bool
	}{
		{"plain client, TLS-only shard", nil, tlsShard, func(err error) bool { return errors.Is(err, ringstore.ErrNoAnswer) }},
		{"TLS client, plain shard", tlsShard.Dial(), plainShard, func(err error) bool {
			var rec tls.RecordHeaderError
			return errors.As(err, &rec)
		}},
		{"no client certificate", dialWith(certs.ClientTLS(t, false)), tlsShard, remoteError},
		{"client certificate of another CA", dialWith(withRogue), tlsShard, remoteError},
		{"shard certificate of another CA", dialWith(other.ClientTLS(t, true)), tlsShard, func(err error) bool {
			var v *tls.CertificateVerificationError
			return errors.As(err, &v)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ringstore.Probe(context.Background(), tc.dial, tc.shard.Addr, 2*time.Second)
			if err == nil || !tc.is(err) || !strings.Contains(err.Error(), tc.shard.Addr) {
				t.Fatalf("probe: %v", err)
			}
			t.Log(err)
		})
	}
}

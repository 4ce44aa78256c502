package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/locsvc/locsvc/integration"
	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/node"
)

// gauge reads one unlabelled gauge from n's registry (ok false: absent).
func gauge(t *testing.T, n *node.Node, name string) (float64, bool) {
	t.Helper()
	mfs, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func registerUsers(t *testing.T, n *node.Node, from, to int) {
	t.Helper()
	c := client(t, n)
	for i := from; i < to; i++ {
		req := locsvc.Request{AoR: fmt.Sprintf("sip:c%d@example.com", i), CallID: "c", CSeq: 1,
			Contacts: []locsvc.Contact{{URI: fmt.Sprintf("sip:c%d@192.0.2.1", i)}}}
		if i%2 == 0 {
			req.Contacts = append(req.Contacts, locsvc.Contact{URI: fmt.Sprintf("sip:c%d@192.0.2.2", i)})
		}
		if _, err := c.Register(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
}

// Each storage node counts the records first on its own shard; the
// figures of the nodes sum to the cluster's, which Counts gives whole
// through any node.
func TestCountsSumOverNodes(t *testing.T) {
	m1, m2 := integration.StartMemcached(t), integration.StartMemcached(t)
	cfg1 := testConfig("c1", m1.Addr)
	cfg1.CountInterval = 200 * time.Millisecond
	n1 := start(t, cfg1)
	cfg2 := testConfig("c2", m2.Addr)
	cfg2.CountInterval = 200 * time.Millisecond
	cfg2.Join = []string{n1.GossipAddr()}
	n2 := start(t, cfg2)
	integration.WaitFor(t, 10*time.Second, "both shards healthy on both nodes", func() bool {
		return healthyShards(n1) == 2 && healthyShards(n2) == 2
	})
	const users = 300 // half of them with two contacts
	registerUsers(t, n1, 0, users)

	integration.WaitFor(t, 10*time.Second, "the nodes' counts to add up to the table", func() bool {
		a1, ok1 := gauge(t, n1, "locsvc_aors")
		a2, ok2 := gauge(t, n2, "locsvc_aors")
		b1, _ := gauge(t, n1, "locsvc_bindings")
		b2, _ := gauge(t, n2, "locsvc_bindings")
		return ok1 && ok2 && a1 > 0 && a2 > 0 && a1+a2 == users && b1+b2 == users*3/2
	})
	if at, ok := gauge(t, n2, "locsvc_counted_timestamp_seconds"); !ok || time.Since(time.Unix(int64(at), 0)) > time.Minute {
		t.Errorf("locsvc_counted_timestamp_seconds = %v (%v)", at, ok)
	}
	c, err := client(t, n2).Counts(context.Background(), 0)
	if err != nil || c != (locsvc.Counts{AoRs: users, Bindings: users * 3 / 2}) {
		t.Errorf("Counts through node c2: %+v, %v", c, err)
	}
}

// The embedded store counts all it holds.
func TestCountsEmbedded(t *testing.T) {
	cfg := testConfig("e1")
	cfg.CountInterval = 100 * time.Millisecond
	n := start(t, cfg)
	registerUsers(t, n, 0, 10)
	integration.WaitFor(t, 5*time.Second, "locsvc_aors 10 and locsvc_bindings 15", func() bool {
		a, _ := gauge(t, n, "locsvc_aors")
		b, _ := gauge(t, n, "locsvc_bindings")
		return a == 10 && b == 15
	})
}

// A node stops promptly in the middle of a long dump, which ends with
// Unavailable rather than holding the drain up.
func TestStopEndsADump(t *testing.T) {
	cfg := testConfig("d1")
	cfg.RepairRate = 5 // the dump of 50 AoRs would take 10 s
	cfg.DrainTimeout = 5 * time.Second
	n := start(t, cfg)
	registerUsers(t, n, 0, 50)
	done := make(chan error, 1)
	first := make(chan struct{})
	c := client(t, n)
	go func() {
		seen := 0
		done <- c.Dump(context.Background(), 0, func(locsvc.Result) error {
			if seen++; seen == 1 {
				close(first)
			}
			return nil
		})
	}()
	select {
	case <-first:
	case <-time.After(5 * time.Second):
		t.Fatal("no AoR dumped in 5 s")
	}
	began := time.Now()
	n.Stop(context.Background())
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("Stop took %v with a dump under way", took)
	}
	select {
	case err := <-done:
		if e, ok := locsvc.AsError(err); !ok || e.Kind != locsvc.KindUnavailable {
			t.Errorf("the dump ended with %v, want Unavailable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the dump still runs after Stop")
	}
}

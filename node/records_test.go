package node

import (
	"context"
	"testing"
	"time"

	"github.com/locsvc/locsvc/integration"
)

// A shard that hangs costs a scrape one memcached timeout, not more, and
// hides only its own figure; a second scrape within shardFresh dials
// nothing.
func TestShardRecordsBounded(t *testing.T) {
	mc := integration.StartMemcached(t)
	silent, received := integration.SilentServer(t)
	c := &cluster{cfg: &Config{Memcached: []string{silent, mc.Addr}, MemcachedTimeout: 300 * time.Millisecond}}
	c.pollCtx, c.stopPolls = context.WithCancel(context.Background())
	defer func() { c.stopPolls(); c.polls.Wait() }()

	began := time.Now()
	got := c.shardRecords()
	if took := time.Since(began); took > 600*time.Millisecond {
		t.Errorf("the reading took %v with a 300 ms memcached timeout", took)
	}
	if _, ok := got[mc.Addr]; !ok || len(got) != 1 {
		t.Fatalf("records %v: want the answering shard only", got)
	}
	before := received()
	if again := c.shardRecords(); len(again) != 1 || received() != before {
		t.Errorf("a second reading within %v dialled again (%v)", shardFresh, again)
	}
}

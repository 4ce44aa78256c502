package integration

import (
	"path/filepath"
	"testing"
	"time"
)

// The overload benchmark (integration/bench/cmd/overbench, `make
// bench-overload`) in its smoke mode: for a locsvc node on 3 memcached
// shards and for the Kamailio reference, one short capacity step, the
// three overload steps and the avalanche at tiny rates, every phone
// registered, the table and the figure written. It keeps the benchmark
// runnable; it measures nothing. Missing sipp, kamailio or memcached fail
// the test.
func TestOverBenchSmoke(t *testing.T) {
	_, results := BenchSmoke{Cmd: "overbench", Tools: []string{"sipp", "kamailio", "memcached"}, Assets: true,
		Timeout: 120 * time.Second, Want: []string{"| locsvc | 3x C |", "| kamailio | avalanche |", "smoke passed"}}.Run(t)
	svgs, _ := filepath.Glob(filepath.Join(results, "overbench-smoke-*", "overload.svg"))
	if len(svgs) != 1 {
		t.Errorf("overbench -smoke: %d figures written", len(svgs))
	}
}

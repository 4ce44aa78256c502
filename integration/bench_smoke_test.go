package integration

import (
	"testing"
	"time"
)

// The sipp benchmark (integration/bench/cmd/sipbench, `make bench-sip`) in
// its smoke mode: one short low-rate REGISTER step and one INVITE->302 step
// against a locsvc node on 3 memcached shards and against the Kamailio
// reference registrar, every call must succeed. The same binary is also
// passed as -baseline, which costs a few seconds and keeps the
// interleaved baseline path and its table columns exercised. It keeps the
// benchmark runnable; it measures nothing. Missing sipp, kamailio or
// memcached fail the test.
func TestSipBenchSmoke(t *testing.T) {
	BenchSmoke{Cmd: "sipbench", Tools: []string{"sipp", "kamailio", "memcached"}, Assets: true,
		Args: []string{"-baseline", LocsvcBinary(t)}, Timeout: 90 * time.Second,
		Want: []string{"| locsvc / baseline |"}}.Run(t)
}

package integration

import (
	"testing"
	"time"
)

// The attached-deployment benchmark (integration/bench/cmd/attachbench,
// `make bench-attached`) in its smoke mode: deployment A (the Kamailio
// edge with sip-style.cfg in front of 2 locsvc nodes on their own
// memcached) and deployment B (2 Kamailio nodes replicating with
// dmq_usrloc, integration/bench/kamailio-dmq.cfg), one short low-rate
// REGISTER step and one INVITE step (relayed to a sipp phone answering
// 486) each; every call must succeed, node 2 of each must hold what was
// registered through the entry, and every Kamailio's shared memory must
// be read through kamcmd. It keeps the benchmark runnable; it measures
// nothing. Missing sipp, kamailio, kamcmd or memcached fail the test.
func TestAttachBenchSmoke(t *testing.T) {
	BenchSmoke{Cmd: "attachbench", Tools: []string{"sipp", "kamailio", "kamcmd", "memcached"}, Assets: true,
		Timeout: 90 * time.Second,
		Want:    []string{"| REGISTER -> 200 |", "| INVITE -> phone's 486 + ACK |", "| attached edge | register |", "smoke passed"}}.Run(t)
}

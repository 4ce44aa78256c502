package integration

import (
	"testing"
	"time"
)

// The connections-at-scale benchmark (integration/bench/cmd/connbench,
// `make bench-conns`) in its smoke mode: 200 WebSocket and 200 TCP
// outbound clients registered to a race-built node, keepalives every
// second, every one answered, and one short refresh step that must be
// sustained. It keeps the benchmark runnable; it measures nothing.
func TestConnBenchSmoke(t *testing.T) {
	BenchSmoke{Cmd: "connbench", Timeout: 90 * time.Second, Want: []string{"| WebSocket |", "| TCP |", "smoke passed"}}.Run(t)
}

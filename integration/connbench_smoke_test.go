package integration

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The connections-at-scale benchmark (integration/bench/cmd/connbench,
// `make bench-conns`) in its smoke mode: 200 WebSocket and 200 TCP
// outbound clients registered to a race-built node, keepalives every
// second, every one answered, and one short refresh step that must be
// sustained. It keeps the benchmark runnable; it measures nothing.
func TestConnBenchSmoke(t *testing.T) {
	locsvc := LocsvcBinary(t)
	dir := t.TempDir()
	connbench := filepath.Join(dir, "connbench")
	if out, err := exec.Command("go", "build", "-o", connbench, "github.com/locsvc/locsvc/integration/bench/cmd/connbench").CombinedOutput(); err != nil {
		t.Fatalf("go build connbench: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, connbench, "-smoke", "-locsvc", locsvc, "-out", filepath.Join(dir, "results"))
	// On timeout, SIGTERM lets connbench stop its server by PID.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 45 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("connbench -smoke: %v\n%s", err, out)
	}
	for _, want := range []string{"| WebSocket |", "| TCP |", "smoke passed"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("connbench -smoke: no %q in its output:\n%s", want, out)
		}
	}
	t.Logf("connbench -smoke (%s):\n%s", time.Since(start).Round(100*time.Millisecond), out)
}

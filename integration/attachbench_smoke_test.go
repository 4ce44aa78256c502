package integration

import (
	"context"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
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
	for _, tool := range []string{"sipp", "kamailio", "kamcmd", "memcached"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v (CI installs it in .ci/run)", tool, err)
		}
	}
	_, file, _, _ := runtime.Caller(0)
	assets := filepath.Join(filepath.Dir(file), "bench")
	locsvc := LocsvcBinary(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "attachbench")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/locsvc/locsvc/integration/bench/cmd/attachbench").CombinedOutput(); err != nil {
		t.Fatalf("go build attachbench: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-smoke", "-locsvc", locsvc, "-assets", assets, "-out", filepath.Join(dir, "results"))
	// On timeout, SIGTERM lets attachbench stop its own processes by PID.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("attachbench -smoke: %v\n%s", err, out)
	}
	for _, want := range []string{"| REGISTER -> 200 |", "| INVITE -> phone's 486 + ACK |", "| attached edge | register |", "smoke passed"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("attachbench -smoke: no %q in its output:\n%s", want, out)
		}
	}
	t.Logf("attachbench -smoke (%s):\n%s", time.Since(start).Round(100*time.Millisecond), out)
}

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

// The overload benchmark (integration/bench/cmd/overbench, `make
// bench-overload`) in its smoke mode: for a locsvc node on 3 memcached
// shards and for the Kamailio reference, one short capacity step, the
// three overload steps and the avalanche at tiny rates, every phone
// registered, the table and the figure written. It keeps the benchmark
// runnable; it measures nothing. Missing sipp, kamailio or memcached fail
// the test.
func TestOverBenchSmoke(t *testing.T) {
	for _, tool := range []string{"sipp", "kamailio", "memcached"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v (CI installs it in .ci/run)", tool, err)
		}
	}
	_, file, _, _ := runtime.Caller(0)
	assets := filepath.Join(filepath.Dir(file), "bench")
	locsvc := LocsvcBinary(t)
	dir := t.TempDir()
	overbench := filepath.Join(dir, "overbench")
	if out, err := exec.Command("go", "build", "-o", overbench, "github.com/locsvc/locsvc/integration/bench/cmd/overbench").CombinedOutput(); err != nil {
		t.Fatalf("go build overbench: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	out := filepath.Join(dir, "results")
	cmd := exec.CommandContext(ctx, overbench, "-smoke", "-locsvc", locsvc, "-assets", assets, "-out", out)
	// On timeout, SIGTERM lets overbench stop its own processes by PID.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	start := time.Now()
	output, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("overbench -smoke: %v\n%s", err, output)
	}
	for _, want := range []string{"| locsvc | 3x C |", "| kamailio | avalanche |", "smoke passed"} {
		if !strings.Contains(string(output), want) {
			t.Errorf("overbench -smoke: no %q in its output:\n%s", want, output)
		}
	}
	svgs, _ := filepath.Glob(filepath.Join(out, "overbench-smoke-*", "overload.svg"))
	if len(svgs) != 1 {
		t.Errorf("overbench -smoke: %d figures written", len(svgs))
	}
	t.Logf("overbench -smoke (%s):\n%s", time.Since(start).Round(100*time.Millisecond), output)
}

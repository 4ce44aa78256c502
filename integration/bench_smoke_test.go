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

// The sipp benchmark (integration/bench/cmd/sipbench, `make bench-sip`) in
// its smoke mode: one short low-rate REGISTER step and one INVITE->302 step
// against a locsvc node on 3 memcached shards and against the Kamailio
// reference registrar, every call must succeed. The same binary is also
// passed as -baseline, which costs a few seconds and keeps the
// interleaved baseline path and its table columns exercised. It keeps the
// benchmark runnable; it measures nothing. Missing sipp, kamailio or
// memcached fail the test.
func TestSipBenchSmoke(t *testing.T) {
	for _, tool := range []string{"sipp", "kamailio", "memcached"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v (CI installs it in .ci/run)", tool, err)
		}
	}
	_, file, _, _ := runtime.Caller(0)
	assets := filepath.Join(filepath.Dir(file), "bench")
	locsvc := LocsvcBinary(t)
	dir := t.TempDir()
	sipbench := filepath.Join(dir, "sipbench")
	if out, err := exec.Command("go", "build", "-o", sipbench, "github.com/locsvc/locsvc/integration/bench/cmd/sipbench").CombinedOutput(); err != nil {
		t.Fatalf("go build sipbench: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sipbench, "-smoke", "-locsvc", locsvc, "-baseline", locsvc, "-assets", assets, "-out", filepath.Join(dir, "results"))
	// On timeout, SIGTERM lets sipbench stop its own processes by PID.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sipbench -smoke: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "| locsvc / baseline |") {
		t.Errorf("sipbench -smoke -baseline: no locsvc / baseline column in the table:\n%s", out)
	}
	t.Logf("sipbench -smoke (%s):\n%s", time.Since(start).Round(100*time.Millisecond), out)
}

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

// BenchSmoke is one benchmark command of integration/bench/cmd run in its
// smoke mode, as `make test` runs each of them: it keeps the benchmarks
// runnable and measures nothing.
type BenchSmoke struct {
	Cmd   string   // the command's name under integration/bench/cmd
	Tools []string // programs it needs on the PATH; a missing one fails the test
	// Args follow -smoke -locsvc BIN -out DIR (and -assets DIR when
	// Assets is set).
	Args    []string
	Assets  bool
	Timeout time.Duration
	Want    []string // what its output must hold
}

// Run builds the command, runs it against the race-built locsvc and
// returns its output and its -out folder.
func (b BenchSmoke) Run(t *testing.T) (output, results string) {
	t.Helper()
	for _, tool := range b.Tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v (CI installs it in .ci/run)", tool, err)
		}
	}
	locsvc := LocsvcBinary(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, b.Cmd)
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/locsvc/locsvc/integration/bench/cmd/"+b.Cmd).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", b.Cmd, err, out)
	}
	results = filepath.Join(dir, "results")
	args := []string{"-smoke", "-locsvc", locsvc, "-out", results}
	if b.Assets {
		_, file, _, _ := runtime.Caller(0)
		args = append(args, "-assets", filepath.Join(filepath.Dir(file), "bench"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, b.Args...)...)
	// On timeout, SIGTERM lets the benchmark stop its own processes by PID.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 45 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s -smoke: %v\n%s", b.Cmd, err, out)
	}
	for _, want := range b.Want {
		if !strings.Contains(string(out), want) {
			t.Errorf("%s -smoke: no %q in its output:\n%s", b.Cmd, want, out)
		}
	}
	t.Logf("%s -smoke (%s):\n%s", b.Cmd, time.Since(start).Round(100*time.Millisecond), out)
	return string(out), results
}

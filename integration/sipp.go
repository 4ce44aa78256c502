package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"
)

// SippRun is one sipp call (-m 1) of a scenario in integration/sipp/.
type SippRun struct {
	Scenario string // file name under sipp/
	Target   string // host:port of the server; empty for a UAS scenario
	TCP      bool   // -t t1 instead of UDP
	// Keys are -key values: [name] in the scenario.
	Keys map[string]string
	// CallID fixes the Call-ID (-cid_str), so that several runs form one
	// registration; empty: sipp's own per-run Call-ID.
	CallID string
	Args   []string      // more sipp arguments (-au, -ap...)
	Wait   time.Duration // -timeout; default 10 s
	// Port is sipp's local port (-p); 0 picks a free one.
	Port int
}

// SippResult is how a sipp run ended.
type SippResult struct {
	ExitCode int    // 0: the call succeeded
	Errors   string // the -trace_err log: unexpected messages, failed checks
	Messages string // the -trace_msg log: everything sent and received
	Output   string // stdout and stderr
}

// RunSipp runs sipp on loopback from a free port and waits for it. A
// missing sipp fails the test.
func RunSipp(t testing.TB, r SippRun) SippResult {
	t.Helper()
	if r.Port == 0 {
		r.Port = FreePort(t)
	}
	res, err := runSipp(r, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// GoSipp starts sipp in the background (a UAS waiting for its call, say)
// and returns a function that waits for it to end. r.Port should be set:
// it is where the scenario listens.
func GoSipp(t testing.TB, r SippRun) (wait func() SippResult) {
	t.Helper()
	if r.Port == 0 {
		r.Port = FreePort(t)
	}
	dir := t.TempDir()
	type outcome struct {
		res SippResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := runSipp(r, dir)
		done <- outcome{res, err}
	}()
	var once sync.Once
	var o outcome
	return func() SippResult {
		t.Helper()
		once.Do(func() { o = <-done })
		if o.err != nil {
			t.Fatal(o.err)
		}
		return o.res
	}
}

// MustWait fails the test unless a background sipp call succeeded.
func MustWait(t testing.TB, name string, wait func() SippResult) SippResult {
	t.Helper()
	res := wait()
	if res.ExitCode != 0 {
		t.Fatalf("sipp %s exited %d\nerrors:\n%s\nmessages:\n%s", name, res.ExitCode, res.Errors, res.Messages)
	}
	return res
}

// runSipp runs one sipp process with its files in dir.
func runSipp(r SippRun, dir string) (SippResult, error) {
	bin, err := exec.LookPath("sipp")
	if err != nil {
		return SippResult{}, fmt.Errorf("sipp: %v (CI installs it in .ci/run)", err)
	}
	scenario, err := filepath.Abs(filepath.Join("sipp", r.Scenario))
	if err != nil {
		return SippResult{}, err
	}
	if _, err := os.Stat(scenario); err != nil {
		return SippResult{}, err
	}
	if r.Wait == 0 {
		r.Wait = 10 * time.Second
	}
	errFile, msgFile := filepath.Join(dir, "errors.log"), filepath.Join(dir, "messages.log")
	args := []string{"-sf", scenario, "-m", "1", "-nostdin",
		"-timeout", strconv.Itoa(int(r.Wait/time.Second)) + "s", "-timeout_error",
		"-i", "127.0.0.1", "-p", strconv.Itoa(r.Port),
		"-trace_err", "-error_file", errFile, "-trace_msg", "-message_file", msgFile}
	if r.TCP {
		args = append(args, "-t", "t1")
	}
	if r.CallID != "" {
		args = append(args, "-cid_str", r.CallID)
	}
	names := make([]string, 0, len(r.Keys))
	for k := range r.Keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		args = append(args, "-key", k, r.Keys[k])
	}
	args = append(args, r.Args...)
	if r.Target != "" {
		args = append(args, r.Target)
	}

	// The context kills sipp (by PID) if -timeout somehow does not.
	ctx, cancel := context.WithTimeout(context.Background(), r.Wait+20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir // sipp drops its own files in the working directory
	out, err := cmd.CombinedOutput()
	res := SippResult{Output: string(out)}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
	default:
		return res, fmt.Errorf("sipp %s: %v", r.Scenario, err)
	}
	if b, err := os.ReadFile(errFile); err == nil {
		res.Errors = string(b)
	}
	if b, err := os.ReadFile(msgFile); err == nil {
		res.Messages = string(b)
	}
	return res, nil
}

// MustSipp runs sipp and fails the test unless the call succeeded.
func MustSipp(t testing.TB, r SippRun) SippResult {
	t.Helper()
	res := RunSipp(t, r)
	if res.ExitCode != 0 {
		t.Fatalf("sipp %s (keys %v) exited %d\nerrors:\n%s\nmessages:\n%s", r.Scenario, r.Keys, res.ExitCode, res.Errors, res.Messages)
	}
	return res
}

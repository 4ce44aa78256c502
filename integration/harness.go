package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FreePort returns a loopback port that was free for both TCP and UDP a
// moment ago (SIP listens on both).
func FreePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port
	}
	t.Fatal("no free port found")
	return 0
}

// FreeAddr is "127.0.0.1:<free port>".
func FreeAddr(t testing.TB) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}

// binary is one build of cmd/locsvc, made once per test binary run.
type binary struct {
	once sync.Once
	path string
	err  error
}

var raceBinary, plainBinary binary

// LocsvcBinary is cmd/locsvc built with the race detector, for tests.
func LocsvcBinary(t testing.TB) string { return raceBinary.get(t, "-race") }

// LocsvcBenchBinary is cmd/locsvc built plainly, for benchmarks.
func LocsvcBenchBinary(t testing.TB) string { return plainBinary.get(t) }

// RemoveBinaries deletes the builds; TestMain calls it after the run.
func RemoveBinaries() {
	for _, b := range []*binary{&raceBinary, &plainBinary} {
		if b.path != "" {
			os.RemoveAll(filepath.Dir(b.path))
		}
	}
}

func (b *binary) get(t testing.TB, flags ...string) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "locsvc-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "locsvc")
		args := append(append([]string{"build"}, flags...), "-o", b.path, "github.com/locsvc/locsvc/cmd/locsvc")
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Proc is a child process the test owns. Its output is kept for failure
// reports.
type Proc struct {
	Name   string
	cmd    *exec.Cmd
	out    *syncBuffer
	done   chan struct{}
	waitMu sync.Mutex
	err    error
}

// Start runs a program and registers its stop (by PID) with t.Cleanup.
func Start(t testing.TB, name, path string, env []string, args ...string) *Proc {
	t.Helper()
	if _, err := exec.LookPath(path); err != nil {
		t.Fatalf("%s: %v (CI installs it in .ci/run)", name, err)
	}
	p := &Proc{Name: name, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	// Its own process group, so a Ctrl-C on the test run does not race
	// the test's own orderly stop.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		err := p.cmd.Wait()
		p.waitMu.Lock()
		p.err = err
		p.waitMu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("--- output of %s (pid %d):\n%s", name, p.PID(), p.Output())
		}
	})
	return p
}

// PID of the process.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Output so far.
func (p *Proc) Output() string { return p.out.String() }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process (by PID).
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	return p.cmd.Process.Signal(sig)
}

// Wait waits up to d for the process to end and returns its exit error.
func (p *Proc) Wait(d time.Duration) (exited bool, err error) {
	select {
	case <-p.done:
		p.waitMu.Lock()
		defer p.waitMu.Unlock()
		return true, p.err
	case <-time.After(d):
		return false, nil
	}
}

// Stop sends SIGTERM and waits up to d for a clean exit. It reports the
// exit error, or an error if the process had to be killed.
func (p *Proc) Stop(d time.Duration) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	exited, err := p.Wait(d)
	if !exited {
		p.Kill()
		return fmt.Errorf("%s did not stop within %v of SIGTERM", p.Name, d)
	}
	return err
}

// Kill sends SIGKILL (kill -9) and waits for the process to end.
func (p *Proc) Kill() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// WaitHTTP polls url until it answers 200 or d passes.
func WaitHTTP(ctx context.Context, url string, d time.Duration) error {
	return waitHTTPWith(ctx, http.DefaultClient, url, d)
}

// waitHTTPWith is WaitHTTP through client, which for a TLS node carries
// the CA and perhaps a client certificate (NodeOptions.TLS; certificates
// come from internal/testcerts).
func waitHTTPWith(ctx context.Context, client *http.Client, url string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s: %s", url, resp.Status, bytes.TrimSpace(body))
		}
		last = err
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitFor polls cond every 50 ms until it holds or d passes.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// SilentServer accepts TCP connections and never answers, like a
// memcached that hangs; it reports how many bytes reached it.
func SilentServer(t *testing.T) (addr string, received func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	var conns []net.Conn
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			go func() {
				buf := make([]byte, 4096)
				for {
					k, err := nc.Read(buf)
					mu.Lock()
					n += k
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, nc := range conns {
			_ = nc.Close()
		}
	})
	return ln.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// survivors waits up to d for the processes of a browser, those of
// group pgid or started with its profile directory (a helper may have
// left the group), to end. Those still there are killed by PID (the
// unique profile path makes them ours) and returned.
func survivors(pgid int, profile string, d time.Duration) []int {
	deadline := time.Now().Add(d)
	for {
		var left []int
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if ours(pid, pgid, profile) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			return left
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ours reports whether pid is a live (not zombie) process in group pgid
// or one started with profile on its command line.
func ours(pid, pgid int, profile string) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// After "pid (comm)" come state, ppid, pgrp; comm may hold spaces.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
		return false
	}
	if g, _ := strconv.Atoi(f[2]); g == pgid {
		return true
	}
	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return bytes.Contains(cmdline, []byte(profile))
}

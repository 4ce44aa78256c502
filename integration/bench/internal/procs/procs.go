// Package procs runs the processes a benchmark measures (locsvc nodes,
// memcached, sipp, Kamailio), each in a process group of its own so that
// a Ctrl-C on the terminal reaches only the benchmark, which then stops
// them in order, by PID, and waits until none of their group is left.
// Should the benchmark die without stopping them, the kernel sends them
// SIGTERM (Pdeathsig). The benchmarks are standalone mains, not tests, so
// this is their one copy of what the integration harness does for tests.
package procs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Table is every process a run started.
type Table struct {
	// Grace is how long Stop waits after SIGTERM before it kills the
	// process group.
	Grace time.Duration
	// Logf reports what stopping had to force.
	Logf func(format string, args ...any)

	mu   sync.Mutex
	list []*Proc
}

// Proc is one process of the table.
type Proc struct {
	Name string
	t    *Table
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	once sync.Once
}

// Start runs bin with args in dir, its output to logPath, env added to
// this process's environment.
func (t *Table) Start(name, logPath, dir string, env []string, bin string, args ...string) (*Proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &Proc{Name: name, t: t, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	if len(env) > 0 {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	t.list = append(t.list, p)
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the process's, and its process group's, ID.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is how the process exited, once Done is closed.
func (p *Proc) Err() error { return p.err }

// CPUSeconds is the CPU time (user and system) the exited process used,
// 0 before it has exited.
func (p *Proc) CPUSeconds() float64 {
	if !p.Exited() || p.cmd.ProcessState == nil {
		return 0
	}
	u, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(u.Utime) + tv(u.Stime)
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM, waits up to the table's Grace, then kills the
// process group (its own children only: it was started with Setpgid),
// and waits until no process of the group is left (Kamailio's workers
// outlive their main process).
func (p *Proc) Stop() {
	p.once.Do(func() {
		pid := p.PID()
		if !p.Exited() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(p.t.Grace):
				p.t.logf("%s (pid %d) ignored SIGTERM: killing its process group", p.Name, pid)
				_ = syscall.Kill(-pid, syscall.SIGKILL)
				<-p.done
			}
		}
		for range 100 {
			if err := syscall.Kill(-pid, 0); errors.Is(err, syscall.ESRCH) {
				return
			}
			time.Sleep(50 * time.Millisecond)
			if err := syscall.Kill(-pid, 0); err == nil {
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
		}
		p.t.logf("%s: process group %d still alive", p.Name, pid)
	})
}

// StopAll stops every process still running, newest first.
func (t *Table) StopAll() {
	t.mu.Lock()
	list := slices.Clone(t.list)
	t.mu.Unlock()
	slices.Reverse(list)
	for _, p := range list {
		p.Stop()
	}
}

func (t *Table) logf(format string, args ...any) {
	if t.Logf != nil {
		t.Logf(format, args...)
	}
}

// Interruptible is the context of a run: the first SIGINT or SIGTERM
// cancels it, so the run winds down and stops its processes in order; a
// second stops every process of t at once and exits 2.
func (t *Table) Interruptible() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		t.logf("%v: stopping", s)
		cancel()
		<-sigs
		t.logf("second signal: stopping every process now")
		t.StopAll()
		os.Exit(2)
	}()
	return ctx
}

// Finish ends a benchmark's main once its run returned err: every process
// still running is stopped; then, on an error, the process logs it and
// exits 130 when ctx (Interruptible's) was interrupted, 1 otherwise.
func (t *Table) Finish(ctx context.Context, err error) {
	t.StopAll()
	if err == nil {
		return
	}
	if ctx.Err() != nil {
		t.logf("interrupted: %v", err)
		os.Exit(130)
	}
	t.logf("FAILED: %v", err)
	os.Exit(1)
}

// FreePort is a loopback port that was free for both TCP and UDP a moment
// ago, for a child to listen on (SIP and gossip listen on both).
func FreePort() (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port, nil
	}
	return 0, errors.New("no free port")
}

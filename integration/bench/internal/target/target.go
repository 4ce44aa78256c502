// Package target starts the SIP servers the benchmarks measure, each on
// 127.0.0.1 at ports picked at run time: a locsvc node in redirect mode on
// three memcached shards of its own (R=2), or the Kamailio reference
// registrar (integration/bench/kamailio-ref.cfg), optionally pinned to
// CPUs (Pinned) and capped at a share of one (Quota). It also reads what a
// running server has used: CPU time and peak memory, summed over every
// process of each started process group (Kamailio's workers are children
// of its main process). sipbench and overbench share it, so that both
// measure the same server started the same way.
package target

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/procs"
)

// Server is one running target.
type Server struct {
	Name  string // the target's name in tables and folders
	SIP   string // host:port of its UDP SIP listener
	Procs []*procs.Proc
	Info  string // a line for the log: shards, children
	stop  func()
}

// Stop stops every process of the server by PID, locsvc before its
// shards.
func (s *Server) Stop() {
	if s.stop != nil {
		s.stop()
	}
}

// Main is the process that answers SIP: locsvc or Kamailio's main
// process.
func (s *Server) Main() *procs.Proc { return s.Procs[len(s.Procs)-1] }

// Start runs start up to three times: a port picked free can be taken by
// another process before the child binds it. logf reports each failure.
func Start(ctx context.Context, logf func(string, ...any), name string, start func() (*Server, error)) (*Server, error) {
	var err error
	for attempt := range 3 {
		var s *Server
		if s, err = start(); err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			break
		}
		logf("%s did not start (attempt %d): %v", name, attempt+1, err)
	}
	return nil, err
}

// Pinned is how to run bin on the CPUs listed (taskset's syntax, "1" or
// "0,2-3"); cpus empty runs it unpinned. taskset sets the affinity and
// execs bin, so the process keeps the PID the table knows, and every
// child it forks (Kamailio's workers) inherits the pinning.
func Pinned(cpus, bin string, args ...string) (string, []string) {
	if cpus == "" {
		return bin, args
	}
	return "taskset", append([]string{"-c", cpus, bin}, args...)
}

// CheckCPUs fails unless taskset can pin a process to cpus here (a CPU
// may be missing, or outside this container's cpuset).
func CheckCPUs(ctx context.Context, cpus string) error {
	if cpus == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	bin, args := Pinned(cpus, "true")
	if out, err := runQuiet(ctx, bin, args...); err != nil {
		return fmt.Errorf("taskset -c %s: %v %s", cpus, err, strings.TrimSpace(out))
	}
	return nil
}

// Tail is the last 3,000 bytes of a log, for an error message.
func Tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

func writeCommand(dir, bin string, args []string) {
	_ = os.WriteFile(filepath.Join(dir, "command.txt"), []byte(bin+" "+strings.Join(args, " ")+"\n"), 0o644)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func runQuiet(ctx context.Context, bin string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

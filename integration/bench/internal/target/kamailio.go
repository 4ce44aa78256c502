package target

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/procs"
)

// Kamailio is how to start the Kamailio reference.
type Kamailio struct {
	Config   string // kamailio-ref.cfg
	Dir      string // folder for its log and command line
	Children int    // UDP worker processes
	ShmMB    int    // shared memory, MB (the location table lives there); 0: Kamailio's default (64)
	CPUs     string // taskset CPU list; empty: unpinned
	Quota    *Quota // a CPU cgroup for all its processes; nil: none
}

// StartKamailio starts the reference registrar (target "kamailio") and
// waits until it answers OPTIONS.
func StartKamailio(ctx context.Context, t *procs.Table, o Kamailio) (*Server, error) {
	s := &Server{Name: "kamailio"}
	port, err := procs.FreePort()
	if err != nil {
		return nil, err
	}
	rundir, err := os.MkdirTemp("", "bench-kamailio-")
	if err != nil {
		return nil, err
	}
	s.SIP = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{"-DD", "-E", "-Y", rundir, "-f", o.Config,
		"-A", "SIP_IP=127.0.0.1", "-A", "SIP_PORT=" + strconv.Itoa(port),
		"-A", `SIPDOMAIN="localhost"`, "-A", "CHILDREN=" + strconv.Itoa(o.Children)}
	if o.ShmMB > 0 {
		args = append(args, "-m", strconv.Itoa(o.ShmMB))
	}
	bin, args := o.Quota.Wrap(Pinned(o.CPUs, "kamailio", args...))
	writeCommand(o.Dir, bin, args)
	p, err := t.Start("kamailio", filepath.Join(o.Dir, "kamailio.log"), o.Dir, nil, bin, args...)
	s.stop = func() {
		if p != nil {
			p.Stop()
		}
		os.RemoveAll(rundir)
	}
	if err != nil {
		s.Stop()
		return nil, err
	}
	s.Procs = []*procs.Proc{p}
	if err := WaitReady(ctx, p, "", s.SIP, 20*time.Second); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w\n%s", err, Tail(filepath.Join(o.Dir, "kamailio.log")))
	}
	s.Info = fmt.Sprintf("%d UDP children", o.Children)
	if o.CPUs != "" {
		s.Info += ", on CPU " + o.CPUs
	}
	s.Info += o.Quota.Describe()
	return s, nil
}

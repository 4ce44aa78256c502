package main

import (
	"context"
	"fmt"
	"github.com/locsvc/locsvc/integration/bench/internal/procs"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/target"
)

// result is what one target measured.
type result struct {
	target    string
	capacity  *step   // the best sustainable step of the search: its rate is C; nil if none
	bounded   bool    // C is a lower bound: the search ran out of time, reached -max-rate or sipp could send no faster
	note      string  // why the search ended, when not at the limit
	search    []*step // every step of the search
	loads     []*step // the overload steps, in the order of -loads
	avalanche *step
}

// c is the target's capacity in REGISTERs/s (0: none found).
func (res *result) c() int {
	if res.capacity == nil {
		return 0
	}
	return res.capacity.rate
}

// measureTarget runs the three phases of one target, each on freshly
// started processes: the overload of one step must not weigh on the
// next, and each step's peak memory is its own. In -smoke mode, which
// measures nothing, one set of processes serves every step, to save the
// starts and stops.
func (r *runner) measureTarget(ctx context.Context, name string) (*result, error) {
	res := &result{target: name}
	var shared *target.Server
	defer func() {
		if shared != nil {
			r.stopServer(shared)
		}
	}()
	// with runs fn on a server of its own, or the shared one.
	with := func(label string, fn func(*target.Server) error) error {
		if r.c.smoke && shared != nil {
			return fn(shared)
		}
		srv, err := r.startServer(ctx, name, "server-"+label)
		if err != nil {
			return err
		}
		if r.c.smoke {
			shared = srv
			return fn(srv)
		}
		err = fn(srv)
		r.stopServer(srv)
		if err != nil {
			return err
		}
		return procs.Sleep(ctx, r.c.cooldown)
	}
	if c, given := r.c.given[name]; given {
		res.capacity = givenCapacity(name, c)
	} else {
		err := with("capacity", func(srv *target.Server) error { return r.searchCapacity(ctx, srv, res) })
		r.searchesLeft--
		if err != nil {
			return res, err
		}
	}
	if res.capacity == nil {
		logf("%s: no sustainable rate (%s): no overload steps", name, res.note)
		r.retryStepsLeft -= r.c.retrySteps()
		return res, nil
	}
	logf("%s: C = %d REGISTERs/s", name, res.c())
	for _, m := range r.c.loads {
		rate := int(math.Round(m * float64(res.c())))
		phones := max(int(float64(rate)*r.c.loadStep.Seconds()), 1)
		label := fmt.Sprintf("load-%gx", m)
		err := with(label, func(srv *target.Server) error {
			st, err := r.retryStep(ctx, srv, label, rate, phones, res.c())
			if st != nil {
				st.mult = m
				res.loads = append(res.loads, st)
			}
			return err
		})
		if err != nil {
			return res, err
		}
	}
	if r.c.avalanchePhones == 0 {
		return res, nil
	}
	err := with("avalanche", func(srv *target.Server) error {
		st, err := r.retryStep(ctx, srv, "avalanche", r.c.avalancheRate, r.c.avalanchePhones, res.c())
		res.avalanche = st
		return err
	})
	return res, err
}

// startServer starts a target's processes, pinned to -server-cpus,
// logging to a folder of their own.
func (r *runner) startServer(ctx context.Context, name, label string) (*target.Server, error) {
	dir := filepath.Join(r.dir, name, label)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	srv, err := target.Start(ctx, logf, name, func() (*target.Server, error) {
		if name == "locsvc" {
			return target.StartLocsvc(ctx, children, target.Locsvc{
				Name: name, Bin: r.c.locsvc, Dir: dir, CPUs: r.c.serverCPUs, Quota: r.quota, Extra: r.c.locsvcFlags})
		}
		return target.StartKamailio(ctx, children, target.Kamailio{
			Config: filepath.Join(r.c.assets, "kamailio-ref.cfg"), Dir: dir,
			Children: r.c.kamChildren, ShmMB: r.c.kamShmMB, CPUs: r.c.serverCPUs, Quota: r.quota})
	})
	if err != nil {
		return nil, err
	}
	logf("%s up at %s (%s)", name, srv.SIP, srv.Info)
	return srv, nil
}

func (r *runner) stopServer(srv *target.Server) {
	t0 := time.Now()
	srv.Stop()
	logf("%s stopped (%s)", srv.Name, time.Since(t0).Round(100*time.Millisecond))
}

package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/procs"
)

// runner is one run: its folder, files and schedule.
type runner struct {
	c         config
	dir       string
	usersCSV  string
	phonePort int
	steps     *os.File // steps.csv
	samples   *os.File // shm.csv
	start     time.Time
	left      int // searches not yet run
}

// job is one search.
type job struct {
	deployment string
	req        request
}

// schedule alternates the deployments' order from one request type to
// the next: REGISTER A then B, INVITE B then A.
func schedule(requests []request) []job {
	var jobs []job
	for i, q := range requests {
		first, second := attached, dmq
		if i%2 == 1 {
			first, second = second, first
		}
		jobs = append(jobs, job{first, q}, job{second, q})
	}
	return jobs
}

func run(ctx context.Context, c config) error {
	if err := checkTools(c); err != nil {
		return err
	}
	if c.assets == "" {
		c.assets = procs.Assets()
	}
	c.assets, _ = filepath.Abs(c.assets)
	c.kamDir = filepath.Join(filepath.Dir(c.assets), "kamailio")
	for _, f := range []string{filepath.Join(c.assets, "kamailio-dmq.cfg"), filepath.Join(c.kamDir, "sip-style.cfg"),
		filepath.Join(c.assets, "sipp", "register.xml"), filepath.Join(c.assets, "sipp", "register_preload.xml"),
		filepath.Join(c.assets, "sipp", "invite_busy.xml"), filepath.Join(c.assets, "sipp", "phone_busy.xml")} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("assets: %v (set -assets to integration/bench)", err)
		}
	}
	c.locsvc, _ = filepath.Abs(c.locsvc)

	stamp := time.Now().UTC().Format("20060102-150405")
	name := "attachbench-" + stamp
	if c.smoke {
		name = "attachbench-smoke-" + stamp
	}
	dir, err := filepath.Abs(filepath.Join(c.out, name))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	r := &runner{c: c, dir: dir, start: time.Now()}
	logf("writing to %s", dir)
	if r.phonePort, err = procs.FreePort(); err != nil {
		return err
	}
	if err := r.writeUsers(); err != nil {
		return err
	}
	if r.steps, err = os.Create(filepath.Join(dir, "steps.csv")); err != nil {
		return err
	}
	defer r.steps.Close()
	fmt.Fprintln(r.steps, stepCSVHeader)
	if r.samples, err = os.Create(filepath.Join(dir, "shm.csv")); err != nil {
		return err
	}
	defer r.samples.Close()
	fmt.Fprintln(r.samples, sampleCSVHeader)

	res := &results{}
	runErr := r.runAll(ctx, res)
	table := r.table(res)
	fmt.Print(table)
	_ = os.WriteFile(filepath.Join(dir, "table.md"), []byte(table), 0o644)
	if !c.smoke {
		_ = os.WriteFile(filepath.Join(c.out, "attachbench.md"), []byte(table), 0o644)
	}
	if runErr != nil {
		return runErr
	}
	if c.smoke {
		if err := res.smokeVerdict(); err != nil {
			return fmt.Errorf("smoke: %w", err)
		}
		logf("smoke passed (%s)", time.Since(r.start).Round(time.Second/10))
	} else {
		logf("done in %s", time.Since(r.start).Round(time.Second))
	}
	return nil
}

// results is everything a run found.
type results struct {
	searches []*search
	notes    map[string]string // deployment -> what the replication check found
	check    *checkResult
}

func (res *results) find(dep string, q request) *search {
	for _, s := range res.searches {
		if s.deployment == dep && s.req == q {
			return s
		}
	}
	return nil
}

// smokeVerdict fails a -smoke run unless every search passed its step,
// the replication was seen and every Kamailio's memory was read.
func (res *results) smokeVerdict() error {
	var errs []error
	for _, s := range res.searches {
		if s.best == nil {
			errs = append(errs, fmt.Errorf("%s %s failed: %s", s.deployment, s.req, s.note))
			continue
		}
		for i, m := range s.best.mem {
			// The entry point holds the transactions (B's node 2 may hold none).
			if m.samples < 2 || m.total == 0 || i == 0 && m.peakTx == 0 {
				errs = append(errs, fmt.Errorf("%s %s: %s's memory not read (%d readings, %d transactions)", s.deployment, s.req, m.kam, m.samples, m.peakTx))
			}
		}
	}
	for dep, n := range res.notes {
		if n != "ok" {
			errs = append(errs, fmt.Errorf("%s replication: %s", dep, n))
		}
	}
	return errors.Join(errs...)
}

func (r *runner) runAll(ctx context.Context, res *results) error {
	res.notes = map[string]string{}
	jobs := schedule(r.c.requests)
	r.left = len(jobs)
	for _, j := range jobs {
		s, err := r.runJob(ctx, res, j)
		r.left--
		if s != nil {
			res.searches = append(res.searches, s)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", j.deployment, j.req, err)
		}
	}
	if r.c.checkMB <= 0 {
		return nil
	}
	reg := res.find(attached, register)
	if reg == nil {
		return nil
	}
	fit, ok := fitMemory(reg, "edge")
	if !ok || math.IsNaN(fit.lifetime) { // no step long enough
		logf("sizing check skipped: no passing REGISTER step of A to fit the edge's memory on")
		return nil
	}
	var err error
	res.check, err = r.shmCheck(ctx, fit)
	return err
}

// runJob runs one search on freshly started processes.
func (r *runner) runJob(ctx context.Context, res *results, j job) (*search, error) {
	d, err := startDeployment(ctx, r.c, j.deployment, filepath.Join(r.dir, j.deployment, string(j.req)), r.c.shmMB)
	if err != nil {
		return nil, err
	}
	defer func() {
		t0 := time.Now()
		d.stop()
		logf("%s stopped (%s)", d.name, time.Since(t0).Round(100*time.Millisecond))
	}()
	if j.req == invite {
		if note, err := r.preload(ctx, d, res.find(j.deployment, register)); err != nil || note != "" {
			return &search{deployment: j.deployment, req: invite, note: note}, err
		}
		if err := r.noteReplication(ctx, res, d); err != nil {
			return nil, err
		}
		// The REGISTERs' transactions expire first, so that the memory
		// readings of the INVITE steps see only INVITEs'.
		if !r.c.smoke {
			r.waitDrained(ctx, d.entry, 20*time.Second)
		}
		phone, err := r.startPhone(d)
		if err != nil {
			return nil, err
		}
		defer phone.Stop()
	}
	share := (r.c.budget - time.Since(r.start)) / time.Duration(max(r.left, 1))
	s, err := r.search(ctx, d, j.req, time.Now().Add(share))
	if err == nil && j.req == register {
		err = r.noteReplication(ctx, res, d)
	}
	return s, err
}

// noteReplication records what the replication check found (the first
// failure of a deployment stays); only the context ending is an error.
func (r *runner) noteReplication(ctx context.Context, res *results, d *deployment) error {
	err := d.checkReplicated(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	note := "ok"
	if err != nil {
		note = err.Error()
		logf("%s replication: %s", d.name, note)
	}
	if prev, ok := res.notes[d.name]; !ok || prev == "ok" {
		res.notes[d.name] = note
	}
	return nil
}

// preload registers every user once from the phone's port, at
// -preload-rate, or two thirds of the deployment's sustainable REGISTER
// rate; once more at a third of that if some failed. A non-empty note
// says it did not succeed.
func (r *runner) preload(ctx context.Context, d *deployment, reg *search) (string, error) {
	rate := 1000
	switch {
	case r.c.smoke:
		rate = r.c.smokeRate
	case r.c.preloadRate > 0:
		rate = r.c.preloadRate
	case reg != nil && reg.best != nil:
		rate = max(r.c.minRate*4, reg.best.rate*2/3)
	}
	for attempt := 1; ; attempt++ {
		logf("%s: registering all %d users at %d/s from the phone's port %d", d.name, r.c.users, rate, r.phonePort)
		st, err := r.runStep(ctx, d, preload, rate, r.c.users, r.phonePort, "register-preload")
		if err != nil {
			return "preload: " + err.Error(), err
		}
		if st.failed == 0 && st.ok >= r.c.users {
			return "", procs.Sleep(ctx, r.c.cooldown)
		}
		if attempt == 2 {
			return fmt.Sprintf("preload: %d of %d REGISTERs failed", st.failed, r.c.users), nil
		}
		if err := procs.Sleep(ctx, 2*r.c.cooldown); err != nil {
			return "", err
		}
		rate = max(rate/3, r.c.minRate)
	}
}

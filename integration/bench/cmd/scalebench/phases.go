package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/integration/bench/internal/procs"
	"github.com/locsvc/locsvc/ring"
)

// Bounds of the phases: generous, since they only decide when a run has
// failed; the figures are the times measured.
const (
	convergeBound = 120 * time.Second
	detectBound   = 120 * time.Second
	settleBound   = 120 * time.Second
)

// start launches every memcached, then every node at once, and measures
// until every node sees them all.
func (b *bench) start(ctx context.Context) error {
	if err := b.net.addMany(b.c.n); err != nil {
		return err
	}
	for _, h := range b.net.hosts {
		m, err := b.newMember(ctx, h)
		if err != nil {
			return err
		}
		b.members = append(b.members, m)
	}
	launched := time.Now()
	for _, m := range b.members {
		if err := b.launchNode(m, b.seeds()); err != nil {
			return err
		}
	}
	ready := make([]time.Duration, len(b.members))
	errs := make([]error, len(b.members))
	var wg sync.WaitGroup
	for i, m := range b.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.waitReady(ctx, convergeBound)
			ready[i] = time.Since(launched)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	all := func(*member) []*member { return b.members }
	conv, err := watch(ctx, launched, convergeBound, b.members, all)
	b.res.ready, b.res.converge = ready, conv
	if err != nil {
		return err
	}
	v, err := b.members[0].view(ctx)
	if err != nil {
		return err
	}
	b.res.ownership = balance(v.ownership, b.c.replicas)
	return nil
}

// balance turns a node's ownership report (at R) into the figures of the
// table, adding R=1 from the same shards.
func balance(own map[string]float64, r int) ownership {
	var shards []ring.Shard
	for id := range own {
		shards = append(shards, ring.Shard{ID: id, Addr: id, Healthy: true})
	}
	o := ownership{shards: len(own)}
	o.r1 = minMax(ring.New(shards).Ownership(1))
	o.rN = minMax(own)
	// A shard's count of the 2^16 partitions is binomial (each partition
	// takes it among its r replicas with probability r/s): four relative
	// deviations bound max/mean for any fair placement.
	const partitions = 1 << 16
	for i, rr := range []int{1, r} {
		p := float64(rr) / float64(o.shards)
		o.bound[i] = 1 + 4*math.Sqrt((1-p)/(partitions*p))
	}
	return o
}

// minMax is the smallest and largest share over the mean.
func minMax(share map[string]float64) [2]float64 {
	lo, hi := math.Inf(1), math.Inf(-1)
	mean := 1 / float64(len(share))
	for _, s := range share {
		lo, hi = min(lo, s/mean), max(hi, s/mean)
	}
	return [2]float64{lo, hi}
}

// AoR and contact of registered user i.
func aor(i int) string { return fmt.Sprintf("sip:user%d@scale.example.com", i) }
func contact(i int) string {
	return fmt.Sprintf("sip:user%d@10.%d.%d.%d:5060", i, i/62500%250, i/250%250, i%250+1)
}

// register registers -aors users through all nodes in turn, waits for
// repair to settle, and counts the records on each memcached.
func (b *bench) register(ctx context.Context) error {
	began := time.Now()
	failed := b.parallel(ctx, b.c.aors, 32, func(ctx context.Context, i int) error {
		m := b.members[i%len(b.members)]
		_, err := m.location.Register(ctx, &locsvcv1.RegisterRequest{
			Aor: aor(i), CallId: fmt.Sprintf("scale-%d", i), Cseq: 1, Expires: proto.Int64(3600),
			Contacts: []*locsvcv1.Contact{{Uri: contact(i)}},
		})
		return err
	})
	b.res.registerRate = float64(b.c.aors) / time.Since(began).Seconds()
	if failed > 0 {
		return fmt.Errorf("%d of %d REGISTERs failed", failed, b.c.aors)
	}
	if _, err := b.settle(ctx); err != nil {
		return err
	}
	for _, m := range b.members {
		st, err := m.stats(ctx, "")
		if err != nil {
			return err
		}
		b.res.records = append(b.res.records, st["curr_items"])
	}
	return nil
}

// parallel runs fn for 0..n-1 on conc goroutines and returns how many
// failed (the first failure is logged).
func (b *bench) parallel(ctx context.Context, n, conc int, fn func(context.Context, int) error) int {
	var next, failed atomic.Int64
	var once sync.Once
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := fn(cctx, i)
				cancel()
				if err != nil {
					failed.Add(1)
					once.Do(func() { logf("first failure (user %d): %v", i, err) })
				}
			}
		}()
	}
	wg.Wait()
	return int(failed.Load())
}

// settle waits until no node runs a repair pass and the records copied,
// summed over the nodes, stay the same for three polls a second apart;
// it returns that sum.
func (b *bench) settle(ctx context.Context) (uint64, error) {
	deadline := time.Now().Add(settleBound)
	var last uint64
	same := 0
	for {
		sum, busy := uint64(0), false
		for _, m := range b.members {
			v, err := m.view(ctx)
			if err != nil {
				return 0, err
			}
			sum += v.copied
			busy = busy || v.repairing
		}
		if !busy && sum == last {
			if same++; same == 3 {
				return sum, nil
			}
		} else {
			same = 0
		}
		last = sum
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("repair still running after %v", settleBound)
		}
		if err := procs.Sleep(ctx, time.Second); err != nil {
			return 0, err
		}
	}
}

// measureIdle reads every node's and memcached's CPU time, and the bytes
// each host sends to the others, over -idle with no traffic and no
// polling, and every node's resident memory at its end.
func (b *bench) measureIdle(ctx context.Context) error {
	type reading struct{ node, mc, sent int64 }
	read := func() ([]reading, error) {
		out := make([]reading, len(b.members))
		for i, m := range b.members {
			var err1, err2, err3 error
			out[i].node, err1 = procs.CPUTicks(m.node.PID())
			out[i].mc, err2 = procs.CPUTicks(m.mc.PID())
			out[i].sent, err3 = m.host.sent()
			if err := errors.Join(err1, err2, err3); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	before, err := read()
	if err != nil {
		return err
	}
	began := time.Now()
	if err := procs.Sleep(ctx, b.c.idle); err != nil {
		return err
	}
	after, err := read()
	if err != nil {
		return err
	}
	window := time.Since(began)
	share := func(ticks int64) float64 { return float64(ticks*procs.ClockTick) / float64(window) }
	for i, m := range b.members {
		rss, err := procs.RSS(m.node.PID())
		if err != nil {
			return err
		}
		b.res.nodeCPU = append(b.res.nodeCPU, share(after[i].node-before[i].node))
		b.res.mcCPU = append(b.res.mcCPU, share(after[i].mc-before[i].mc))
		b.res.sent = append(b.res.sent, float64(after[i].sent-before[i].sent)/window.Seconds())
		b.res.nodeRSS = append(b.res.nodeRSS, float64(rss))
	}
	b.res.idle = window
	return nil
}

// kill kills (-9) one node, not a seed, and measures until every other
// node sees it dead; then starts it again over its memcached and
// measures until every node sees it alive.
func (b *bench) kill(ctx context.Context) error {
	victim := b.members[len(b.members)/2]
	var rest []*member
	for _, m := range b.members {
		if m != victim {
			rest = append(rest, m)
		}
	}
	began := time.Now()
	victim.node.Kill()
	var err error
	b.res.killed, err = watch(ctx, began, detectBound, rest, func(*member) []*member { return rest })
	if err != nil {
		return err
	}
	began = time.Now()
	if err := b.relaunch(victim); err != nil {
		return err
	}
	b.res.restarted, err = watch(ctx, began, detectBound, b.members, func(*member) []*member { return b.members })
	return err
}

// split cuts the last third of the hosts off as a group, measures until
// each side sees only itself, heals the split and measures until every
// node sees every member again.
func (b *bench) split(ctx context.Context) error {
	k := len(b.members) / 3
	large, small := b.members[:len(b.members)-k], b.members[len(b.members)-k:]
	var side []*host
	for _, m := range small {
		side = append(side, m.host)
	}
	began := time.Now()
	if err := b.net.split(side); err != nil {
		return err
	}
	var errL, errS error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		b.res.splitLarge, errL = watch(ctx, began, detectBound, large, func(*member) []*member { return large })
	}()
	go func() {
		defer wg.Done()
		b.res.splitSmall, errS = watch(ctx, began, detectBound, small, func(*member) []*member { return small })
	}()
	wg.Wait()
	if err := errors.Join(errL, errS); err != nil {
		_ = b.net.reunite(side)
		return err
	}
	began = time.Now()
	if err := b.net.reunite(side); err != nil {
		return err
	}
	var err error
	b.res.healed, err = watch(ctx, began, detectBound, b.members, func(*member) []*member { return b.members })
	return err
}

// join adds a node with an empty memcached once repair has settled, and
// counts what repair copies to it.
func (b *bench) join(ctx context.Context) error {
	before, err := b.settle(ctx)
	if err != nil {
		return err
	}
	h, err := b.net.add()
	if err != nil {
		return err
	}
	m, err := b.newMember(ctx, h)
	if err != nil {
		return err
	}
	began := time.Now()
	if err := b.launchNode(m, b.seeds()); err != nil {
		return err
	}
	if err := m.waitReady(ctx, convergeBound); err != nil {
		return err
	}
	b.members = append(b.members, m)
	all := func(*member) []*member { return b.members }
	if b.res.joinSeen, err = watch(ctx, began, convergeBound, b.members, all); err != nil {
		return err
	}
	after, err := b.settle(ctx)
	if err != nil {
		return err
	}
	b.res.joinRepair = time.Since(began)
	st, err := m.stats(ctx, "")
	if err != nil {
		return err
	}
	b.res.copied, b.res.newItems = after-before, st["curr_items"]
	v, err := m.view(ctx)
	if err != nil {
		return err
	}
	// A key has R replicas and the shares sum to 1.
	b.res.newShare = v.ownership[m.shard()]
	return nil
}

// verifySample is how many registered users are looked up at the end,
// through each of three nodes.
const verifySample = 1000

// verify looks a sample of the registered users up through the first,
// a middle and the last node: after the kill, the split and the join,
// none may be missing.
func (b *bench) verify(ctx context.Context) error {
	for _, m := range []*member{b.members[0], b.members[len(b.members)/2], b.members[len(b.members)-1]} {
		n := min(verifySample, b.c.aors)
		step := b.c.aors / n
		missing := b.parallel(ctx, n, 16, func(ctx context.Context, j int) error {
			i := j * step
			res, err := m.location.Lookup(ctx, &locsvcv1.LookupRequest{Aor: aor(i)})
			if err != nil {
				return err
			}
			for _, bd := range res.Bindings {
				if bd.Uri == contact(i) {
					return nil
				}
			}
			return fmt.Errorf("%s: contact missing", aor(i))
		})
		b.res.lookups += n
		b.res.missing += missing
	}
	if b.res.missing > 0 {
		return fmt.Errorf("%d of %d lookups did not find the user", b.res.missing, b.res.lookups)
	}
	return nil
}

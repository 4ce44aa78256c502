package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/procs"
	"github.com/locsvc/locsvc/integration/bench/internal/target"
)

// The two deployments compared.
const (
	attached = "attached" // A: Kamailio edge (sip-style.cfg) + 2 locsvc nodes, each on its own memcached
	dmq      = "dmq"      // B: 2 Kamailio nodes (kamailio-dmq.cfg), usrloc replicated with dmq_usrloc
)

var deploymentTitle = map[string]string{
	attached: "A: edge + 2 locsvc",
	dmq:      "B: 2 Kamailio + dmq",
}

// deployment is one of the two set-ups, running.
type deployment struct {
	name  string
	dir   string // its processes' logs and its steps' folders
	entry *kam   // where sipp sends everything: the edge (A), node 1 (B)
	kams  []*kam // every Kamailio, for the memory samples
	procs []*procs.Proc
	stops []func() // in order
	// A: node 2's HTTP API, for the replication check.
	node2HTTP string
}

// exited is the first of the deployment's processes that has exited,
// nil while all run.
func (d *deployment) exited() *procs.Proc {
	for _, p := range d.procs {
		if p.Exited() {
			return p
		}
	}
	return nil
}

func (d *deployment) stop() {
	for _, s := range d.stops {
		s()
	}
	d.stops = nil
}

// cpuTicks is the CPU time so far of every process of the deployment
// (every process of each started process group: Kamailio's workers too),
// in target.ClkTck units.
func (d *deployment) cpuTicks() int64 {
	var sum int64
	for _, v := range (&target.Server{Procs: d.procs}).CPUTicks() {
		sum += v
	}
	return sum
}

// startDeployment starts a deployment, logging to dir, its Kamailio
// processes with -m shmMB. A port taken between picking and binding is
// retried.
func startDeployment(ctx context.Context, c config, name, dir string, shmMB int) (*deployment, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var d *deployment
	var err error
	for attempt := range 3 {
		if name == attached {
			d, err = startAttached(ctx, c, dir, shmMB)
		} else {
			d, err = startDMQ(ctx, c, dir, shmMB)
		}
		if err == nil || ctx.Err() != nil {
			break
		}
		logf("%s did not start (attempt %d): %v", name, attempt+1, err)
	}
	if err != nil {
		return nil, err
	}
	d.dir = dir
	logf("%s up, entry %s (%s -m %d)", name, d.entry.sip, d.entry.name, shmMB)
	return d, nil
}

func freeAddrs(n int) ([]string, error) {
	var out []string
	for range n {
		p, err := procs.FreePort()
		if err != nil {
			return nil, err
		}
		out = append(out, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	}
	return out, nil
}

// checkReplicated checks that what sipp registered through the entry is
// on the other side of the deployment: for A, user bench000000 as node 2
// looks it up, with the edge's Path; for B, node 2 holds as many users
// as node 1 (dmq_usrloc delivers in the background: waited for up to 10
// s).
func (d *deployment) checkReplicated(ctx context.Context) error {
	if d.name == attached {
		u := "http://" + d.node2HTTP + "/v1/lookup?aor=" + url.QueryEscape("sip:bench000000@localhost")
		cl := http.Client{Timeout: 3 * time.Second}
		resp, err := cl.Get(u)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var got struct {
			Bindings []struct {
				URI  string   `json:"uri"`
				Path []string `json:"path"`
			} `json:"bindings"`
		}
		if err := json.Unmarshal(body, &got); err != nil || len(got.Bindings) == 0 {
			return fmt.Errorf("node 2 lookup of bench000000: %s %s", resp.Status, body)
		}
		if p := got.Bindings[0].Path; len(p) == 0 || !strings.Contains(p[0], d.entry.sip) {
			return fmt.Errorf("node 2 lookup of bench000000: path %q, want the edge %s", p, d.entry.sip)
		}
		return nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n1, err1 := d.kams[0].rpc(ctx, "stats.get_statistics", "usrloc:")
		n2, err2 := d.kams[1].rpc(ctx, "stats.get_statistics", "usrloc:")
		if err1 == nil && err2 == nil {
			a, b := n1["usrloc:registered_users"], n2["usrloc:registered_users"]
			if a > 0 && a == b {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("node 1 has %d users, node 2 %d", a, b)
			}
		} else if time.Now().After(deadline) {
			return fmt.Errorf("usrloc statistics: %v %v", err1, err2)
		}
		if err := procs.Sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// stopAll stops processes at once, each by PID.
func stopAll(ps []*procs.Proc) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); p.Stop() }()
	}
	wg.Wait()
}

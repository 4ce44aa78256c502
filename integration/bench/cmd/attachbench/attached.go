package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/procs"
	"github.com/locsvc/locsvc/integration/bench/internal/target"
)

// startAttached is deployment A: two memcached, two locsvc nodes (R=2,
// redirect mode, trusting the edge) each fronting one, and the Kamailio
// edge (integration/kamailio/sip-style.cfg) forwarding to node 1.
func startAttached(ctx context.Context, c config, dir string, shmMB int) (_ *deployment, err error) {
	d := &deployment{name: attached}
	defer func() {
		if err != nil {
			d.stop()
		}
	}()
	mc, err := freeAddrs(2)
	if err != nil {
		return nil, err
	}
	var mcProcs []*procs.Proc
	for i, a := range mc {
		_, port, _ := net.SplitHostPort(a)
		p, err := children.Start("memcached", filepath.Join(dir, fmt.Sprintf("memcached-%d.log", i+1)), dir, nil,
			"memcached", "-u", "nobody", "-l", "127.0.0.1", "-p", port, "-U", "0", "-m", "256", "-t", "1")
		if err != nil {
			return nil, err
		}
		mcProcs = append(mcProcs, p)
		d.procs = append(d.procs, p)
	}
	// Stopped last: the nodes leave while their shards are up.
	d.stops = append(d.stops, func() { stopAll(mcProcs) })
	for _, a := range mc {
		if err := target.WaitMemcached(ctx, a, 10*time.Second); err != nil {
			return nil, err
		}
	}
	var nodes []*procs.Proc
	var sip, httpAddr [2]string
	var gossip string
	for i := range 2 {
		a, err := freeAddrs(4)
		if err != nil {
			return nil, err
		}
		sip[i], httpAddr[i] = a[0], a[2]
		args := []string{"serve", "--node-id", fmt.Sprintf("node%d", i+1),
			"--memcached", mc[i], "--replicas", "2",
			"--sip", a[0], "--grpc", a[1], "--http", a[2], "--gossip", a[3],
			"--sip-mode", "redirect", "--domain", "localhost",
			// The edge's REGISTERs are accepted without a challenge.
			"--trusted", "127.0.0.1/32",
			// Every REGISTER comes from the edge: the per-source
			// REGISTER limit would measure itself.
			"--register-rate", "0",
			"--gossip-profile", "local", "--log-level", "warn"}
		if i == 0 {
			gossip = a[3]
		} else {
			args = append(args, "--join", gossip)
		}
		name := fmt.Sprintf("node%d", i+1)
		_ = os.WriteFile(filepath.Join(dir, name+"-command.txt"), []byte(c.locsvc+" "+strings.Join(args, " ")+"\n"), 0o644)
		p, err := children.Start("locsvc", filepath.Join(dir, name+".log"), dir, nil, c.locsvc, args...)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, p)
		d.procs = append(d.procs, p)
	}
	// Node 2 first: it leaves while node 1 still answers its gossip, then
	// node 1 leaves alone (both at once wait out memberlist's leave
	// broadcast).
	d.stops = append([]func(){func() { nodes[1].Stop(); nodes[0].Stop() }}, d.stops...)
	for i, p := range nodes {
		if err := waitCluster(ctx, p, httpAddr[i], 2, 30*time.Second); err != nil {
			return nil, fmt.Errorf("%w\n%s", err, target.Tail(filepath.Join(dir, fmt.Sprintf("node%d.log", i+1))))
		}
	}
	d.node2HTTP = httpAddr[1]
	edgeSIP, err := freeAddrs(1)
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(edgeSIP[0])
	edge, err := startKamailio(ctx, "edge", dir, filepath.Join(c.kamDir, "sip-style.cfg"), edgeSIP[0], shmMB, []string{
		"SIP_IP=127.0.0.1", "SIP_PORT=" + port,
		fmt.Sprintf("LOCSVC_SIP=%q", "sip:"+sip[0]),
		`SIPDOMAIN="localhost"`,
		fmt.Sprintf("PATH_SECRET=\"%016x\"", rand.Uint64()),
	})
	if err != nil {
		return nil, err
	}
	d.stops = append([]func(){edge.stop}, d.stops...)
	d.procs = append(d.procs, edge.proc)
	d.entry, d.kams = edge, []*kam{edge}
	// The shipped config logs two INFO lines per call followed (debug=2);
	// kamailio-dmq.cfg runs at debug=1. Same level for both.
	if _, err := edge.rpc(ctx, "corex.debug", "1"); err != nil {
		return nil, err
	}
	return d, nil
}

// waitCluster waits until the node at httpAddr is ready and sees n live
// members and n healthy shards.
func waitCluster(ctx context.Context, p *procs.Proc, httpAddr string, n int, d time.Duration) error {
	deadline := time.Now().Add(d)
	cl := http.Client{Timeout: time.Second}
	var last error
	for time.Now().Before(deadline) {
		if p.Exited() {
			return fmt.Errorf("locsvc exited: %v", p.Err())
		}
		last = func() error {
			resp, err := cl.Get("http://" + httpAddr + "/readyz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("readyz: %s", resp.Status)
			}
			resp, err = cl.Get("http://" + httpAddr + "/v1/status")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var st struct {
				Members []struct {
					Alive bool `json:"alive"`
				} `json:"members"`
				Shards []struct {
					Healthy bool `json:"healthy"`
				} `json:"shards"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
				return err
			}
			alive, healthy := 0, 0
			for _, m := range st.Members {
				if m.Alive {
					alive++
				}
			}
			for _, s := range st.Shards {
				if s.Healthy {
					healthy++
				}
			}
			if alive != n || healthy != n {
				return fmt.Errorf("%d members alive, %d shards healthy, want %d", alive, healthy, n)
			}
			return nil
		}()
		if last == nil {
			return nil
		}
		if err := procs.Sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("locsvc at %s not ready: %v", httpAddr, last)
}

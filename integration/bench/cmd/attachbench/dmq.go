package main

import (
	"context"
	"fmt"
	"github.com/locsvc/locsvc/integration/bench/internal/procs"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// startDMQ is deployment B: two Kamailio nodes (integration/bench/
// kamailio-dmq.cfg), each announcing itself to the other over dmq.
func startDMQ(ctx context.Context, c config, dir string, shmMB int) (_ *deployment, err error) {
	d := &deployment{name: dmq}
	defer func() {
		if err != nil {
			d.stop()
		}
	}()
	a, err := freeAddrs(4) // node 1 SIP, node 1 DMQ, node 2 SIP, node 2 DMQ
	if err != nil {
		return nil, err
	}
	for i := range 2 {
		sip, dmqAddr, peer := a[2*i], a[2*i+1], a[2*(1-i)+1]
		_, sipPort, _ := net.SplitHostPort(sip)
		_, dmqPort, _ := net.SplitHostPort(dmqAddr)
		k, err := startKamailio(ctx, fmt.Sprintf("dmq%d", i+1), dir, filepath.Join(c.assets, "kamailio-dmq.cfg"), sip, shmMB, []string{
			"SIP_IP=127.0.0.1", "SIP_PORT=" + sipPort, "DMQ_PORT=" + dmqPort,
			fmt.Sprintf("DMQ_ADDR=%q", "sip:"+dmqAddr), fmt.Sprintf("DMQ_PEER=%q", "sip:"+peer),
			`SIPDOMAIN="localhost"`, "CHILDREN=" + strconv.Itoa(c.kamChildren),
		})
		if err != nil {
			return nil, err
		}
		d.stops = append([]func(){k.stop}, d.stops...)
		d.procs = append(d.procs, k.proc)
		d.kams = append(d.kams, k)
	}
	d.entry = d.kams[0]
	// Both nodes must list both as active before any load, or the first
	// REGISTERs would not be replicated.
	deadline := time.Now().Add(20 * time.Second)
	for _, k := range d.kams {
		for {
			out, err := k.rpcText(ctx, "dmq.list_nodes")
			if err == nil && strings.Count(out, "status: active") >= 2 {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("%s: dmq peers not both active after 20 s: %v %s", k.name, err, out)
			}
			if err := procs.Sleep(ctx, 200*time.Millisecond); err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}

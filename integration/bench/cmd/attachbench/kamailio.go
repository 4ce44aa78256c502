package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/procs"
	"github.com/locsvc/locsvc/integration/bench/internal/target"
)

// kam is one Kamailio process of a deployment, reached with kamcmd over
// the ctl module's socket in its runtime directory (-Y).
type kam struct {
	name   string // "edge", "dmq1", "dmq2"
	sip    string // its SIP address, 127.0.0.1:port
	rundir string
	proc   *procs.Proc
	log    string
}

// startKamailio runs `kamailio -DD -E -Y RUNDIR -m shmMB -f cfg -A ...`
// and waits until it answers OPTIONS at sip and kamcmd through its ctl
// socket.
func startKamailio(ctx context.Context, name, dir, cfg, sip string, shmMB int, defines []string) (*kam, error) {
	// A short path: a Unix socket's path is limited to 107 bytes.
	rundir, err := os.MkdirTemp("", "attachbench-kam-")
	if err != nil {
		return nil, err
	}
	k := &kam{name: name, sip: sip, rundir: rundir, log: filepath.Join(dir, name+".log")}
	args := []string{"-DD", "-E", "-Y", rundir, "-m", strconv.Itoa(shmMB), "-f", cfg}
	for _, d := range defines {
		args = append(args, "-A", d)
	}
	_ = os.WriteFile(filepath.Join(dir, name+"-command.txt"), []byte("kamailio "+strings.Join(args, " ")+"\n"), 0o644)
	k.proc, err = children.Start(name, k.log, dir, nil, "kamailio", args...)
	if err != nil {
		os.RemoveAll(rundir)
		return nil, err
	}
	// OPTIONS answered, then the ctl socket.
	if err := target.WaitReady(ctx, k.proc, "", sip, 20*time.Second); err != nil {
		k.stop()
		return nil, fmt.Errorf("%w\n%s", err, target.Tail(k.log))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := k.rpc(ctx, "core.shmmem")
		if err == nil {
			return k, nil
		}
		if time.Now().After(deadline) {
			k.stop()
			return nil, fmt.Errorf("%s: %v\n%s", name, err, target.Tail(k.log))
		}
		if err := procs.Sleep(ctx, 100*time.Millisecond); err != nil {
			k.stop()
			return nil, err
		}
	}
}

func (k *kam) stop() {
	if k.proc != nil {
		k.proc.Stop()
	}
	os.RemoveAll(k.rundir)
}

// rpcText runs `kamcmd -s unix:RUNDIR/kamailio_ctl args...` and returns
// its output.
func (k *kam) rpcText(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	full := append([]string{"-s", "unix:" + filepath.Join(k.rundir, "kamailio_ctl")}, args...)
	out, err := exec.CommandContext(ctx, "kamcmd", full...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("kamcmd %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// rpc is rpcText's numeric fields: "name: value" lines (core.shmmem,
// tm.stats) and "group:name = value" lines (stats.get_statistics).
func (k *kam) rpc(ctx context.Context, args ...string) (map[string]int64, error) {
	out, err := k.rpcText(ctx, args...)
	if err != nil {
		return nil, err
	}
	vals := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		key, val, ok := strings.Cut(line, " = ")
		if !ok {
			key, val, ok = strings.Cut(line, ":")
			if !ok || strings.Contains(key, " ") {
				continue
			}
		}
		if v, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64); err == nil {
			vals[strings.TrimSpace(key)] = v
		}
	}
	return vals, nil
}

// memSample is one reading of a Kamailio's shared memory and transactions.
type memSample struct {
	at       time.Time
	realUsed int64 // core.shmmem real_used: allocations plus the allocator's own overhead
	total    int64
	maxUsed  int64
	current  int64 // tm.stats current: transactions in memory
	waiting  int64 // tm.stats waiting: of those, in their wait state (answered)
}

func (k *kam) sample(ctx context.Context) (memSample, error) {
	m, err := k.rpc(ctx, "core.shmmem")
	if err != nil {
		return memSample{}, err
	}
	t, err := k.rpc(ctx, "tm.stats")
	if err != nil {
		return memSample{}, err
	}
	return memSample{at: time.Now(), realUsed: m["real_used"], total: m["total"], maxUsed: m["max_used"],
		current: t["current"], waiting: t["waiting"]}, nil
}

package target

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Quota is a CPU cgroup that caps the server under test, with every
// process it starts, at a share of one CPU: a slower server, for the
// load generator to offer it three times what it can take when sipp on
// its own CPU could not offer three times a whole CPU's worth. It needs
// root and a cgroup file system with the cpu controller (v2, or v1's cpu
// hierarchy).
type Quota struct {
	dir   string
	share float64
}

// quotaPeriod is the cgroup's accounting period, in µs. The kernel
// enforces a quota per period, and a group that has used its share
// waits for the next one: at the default 100 ms a server capped at half
// a CPU would stall up to 50 ms at a time, longer than the overload
// target it is measured against. 10 ms keeps the stalls to a few ms.
const quotaPeriod = 10000

// cgroupRoot is where cgroup file systems are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// NewQuota creates the cgroup name capped at share (0 < share <= 1) of a
// CPU; Remove removes it.
func NewQuota(name string, share float64) (*Quota, error) {
	return newQuotaAt(cgroupRoot, name, share)
}

func newQuotaAt(root, name string, share float64) (*Quota, error) {
	if share <= 0 || share > 1 {
		return nil, fmt.Errorf("CPU share %g: want more than 0 and at most 1", share)
	}
	quota := int(share * quotaPeriod)
	var dir string
	var files [][2]string
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		// v2: the parent must hand the cpu controller to its children.
		_ = os.WriteFile(filepath.Join(root, "cgroup.subtree_control"), []byte("+cpu"), 0o644)
		dir = filepath.Join(root, name)
		files = [][2]string{{"cpu.max", fmt.Sprintf("%d %d", quota, quotaPeriod)}}
	} else if _, err := os.Stat(filepath.Join(root, "cpu", "cpu.cfs_quota_us")); err == nil {
		dir = filepath.Join(root, "cpu", name)
		files = [][2]string{{"cpu.cfs_period_us", strconv.Itoa(quotaPeriod)}, {"cpu.cfs_quota_us", strconv.Itoa(quota)}}
	} else {
		return nil, fmt.Errorf("no cgroup cpu controller under %s (neither cgroup.controllers nor cpu/cpu.cfs_quota_us)", root)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating cgroup %s (as root?): %w", dir, err)
	}
	q := &Quota{dir: dir, share: share}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f[0]), []byte(f[1]), 0o644); err != nil {
			return nil, errors.Join(fmt.Errorf("cgroup %s: %w", dir, err), q.Remove())
		}
	}
	return q, nil
}

// Wrap is how to run bin in the cgroup: a shell moves itself into it and
// execs bin, so the process keeps the PID it started with and every
// child it forks stays in the group. A nil Quota runs bin as it is.
func (q *Quota) Wrap(bin string, args []string) (string, []string) {
	if q == nil {
		return bin, args
	}
	procs := filepath.Join(q.dir, "cgroup.procs")
	return "sh", append([]string{"-c", `echo $$ > "$0" && exec "$@"`, procs, bin}, args...)
}

// Describe is what a log line or a table adds about the cap: empty for
// a nil Quota.
func (q *Quota) Describe() string {
	if q == nil {
		return ""
	}
	return fmt.Sprintf(", capped at %g of a CPU", q.share)
}

// Remove removes the cgroup; it fails while a process is still in it.
func (q *Quota) Remove() error {
	if q == nil {
		return nil
	}
	if err := os.Remove(q.dir); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("removing cgroup %s: %w", q.dir, err)
	}
	return nil
}

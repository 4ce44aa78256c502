package target

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The cap is written in each cgroup version's own files, with the short
// period; a share outside (0, 1] and a tree without the cpu controller
// are refused, naming what to fix.
func TestNewQuota(t *testing.T) {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	t.Run("v2", func(t *testing.T) {
		root := t.TempDir()
		os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpu memory"), 0o644)
		q, err := newQuotaAt(root, "bench", 0.5)
		if err != nil {
			t.Fatal(err)
		}
		if got := read(filepath.Join(root, "bench", "cpu.max")); got != "5000 10000" {
			t.Errorf("cpu.max %q", got)
		}
		if got := read(filepath.Join(root, "cgroup.subtree_control")); got != "+cpu" {
			t.Errorf("subtree_control %q", got)
		}
		bin, args := q.Wrap("taskset", []string{"-c", "1", "locsvc"})
		if bin != "sh" || args[2] != filepath.Join(root, "bench", "cgroup.procs") || strings.Join(args[3:], " ") != "taskset -c 1 locsvc" {
			t.Errorf("wrapped: %s %q", bin, args)
		}
	})
	t.Run("v1", func(t *testing.T) {
		root := t.TempDir()
		os.Mkdir(filepath.Join(root, "cpu"), 0o755)
		os.WriteFile(filepath.Join(root, "cpu", "cpu.cfs_quota_us"), []byte("-1"), 0o644)
		if _, err := newQuotaAt(root, "bench", 0.25); err != nil {
			t.Fatal(err)
		}
		if got := read(filepath.Join(root, "cpu", "bench", "cpu.cfs_quota_us")); got != "2500" {
			t.Errorf("quota %q", got)
		}
		if got := read(filepath.Join(root, "cpu", "bench", "cpu.cfs_period_us")); got != "10000" {
			t.Errorf("period %q", got)
		}
	})
	for _, c := range []struct {
		name  string
		share float64
		want  string
	}{
		{"no controller", 0.5, "no cgroup cpu controller"},
		{"no share", 0, "want more than 0 and at most 1"},
		{"more than a CPU", 1.5, "want more than 0 and at most 1"},
	} {
		if _, err := newQuotaAt(t.TempDir(), "bench", c.share); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	var none *Quota
	if bin, args := none.Wrap("locsvc", []string{"serve"}); bin != "locsvc" || len(args) != 1 || none.Remove() != nil {
		t.Errorf("a nil Quota changed the command: %s %q", bin, args)
	}
}

package procs

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// Sleep waits d, or less when ctx ends first (then its error).
func Sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// Assets is integration/bench, where the benchmarks' sipp scenarios and
// Kamailio configs live: found from this source file while it is there
// (go run), else under the working directory (the repository's root).
func Assets() string {
	if _, file, _, ok := runtime.Caller(0); ok {
		d := filepath.Join(filepath.Dir(file), "..", "..")
		if _, err := os.Stat(filepath.Join(d, "kamailio-ref.cfg")); err == nil {
			return d
		}
	}
	return filepath.Join("integration", "bench")
}

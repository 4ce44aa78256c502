package workpool

import (
	"runtime"
	"testing"
	"time"
)

// waitGoroutines waits until the process runs want goroutines.
func waitGoroutines(t *testing.T, what string, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d goroutines, want %d", what, runtime.NumGoroutine(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// A task that finds no idle worker runs at once on a goroutine of its
// own, which then stays, idle, until Linger has passed without work;
// standing workers leave when stop closes.
func TestBurstWorkersLinger(t *testing.T) {
	base := runtime.NumGoroutine()
	stop := make(chan struct{})
	p := New(1, stop)
	p.linger = time.Second
	waitGoroutines(t, "one standing worker", base+1)

	// More tasks than workers, each holding its worker until released.
	const tasks = 4
	release := make(chan struct{})
	started := make(chan struct{}, tasks)
	for range tasks {
		p.Run(func() { started <- struct{}{}; <-release })
	}
	for range tasks {
		<-started
	}
	close(release)
	time.Sleep(100 * time.Millisecond)
	if n := runtime.NumGoroutine(); n < base+tasks {
		t.Errorf("%d goroutines just after the burst, want its %d workers still there", n, tasks)
	}
	waitGoroutines(t, "the burst's workers gone after Linger", base+1)
	close(stop)
	waitGoroutines(t, "every worker gone after stop", base)
}

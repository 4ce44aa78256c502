package ringstore

// workers runs replica calls on long-lived goroutines. A fresh goroutine
// per call grew its stack through gomemcache's call chain every time:
// runtime.copystack was 15% of the CPU of a Lookup profile. A worker keeps
// its grown stack. When every worker is busy, a call gets its own
// goroutine as before, so a burst never waits for a worker.
type workers struct {
	work chan func()
	stop chan struct{}
}

func newWorkers(n int, stop chan struct{}) *workers {
	w := &workers{work: make(chan func()), stop: stop}
	for range n {
		go w.loop()
	}
	return w
}

func (w *workers) loop() {
	for {
		select {
		case f := <-w.work:
			f()
		case <-w.stop:
			return
		}
	}
}

// run calls f on an idle worker, or on a new goroutine if none is idle.
func (w *workers) run(f func()) {
	select {
	case w.work <- f:
	default:
		go f()
	}
}

package pace

import (
	"context"
	"errors"
	"testing"
	"time"
)

// 50 items at 1000 a second take about 50 ms, not less.
func TestWaitKeepsTheRate(t *testing.T) {
	p := New(1000)
	start := time.Now()
	for range 5 {
		if err := p.Wait(context.Background(), 10); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took < 45*time.Millisecond {
		t.Errorf("50 items at 1000/s took %v, want about 50ms", took)
	}
}

// A context that ends stops a long wait at once.
func TestWaitStopsWithContext(t *testing.T) {
	p := New(1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.Wait(ctx, 100); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want the deadline", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Wait returned after %v", took)
	}
}

// A rate below 1 is taken as 1, never as a division by zero.
func TestNewFloorsTheRate(t *testing.T) {
	if p := New(0); p.every != time.Second {
		t.Errorf("New(0) paces every %v, want 1s", p.every)
	}
}

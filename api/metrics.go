package api

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/locsvc/locsvc/internal/histogram"
)

// CallBuckets are the upper bounds of the gRPC call-time histogram: from
// a fraction of a memcached round trip to a timed-out one.
var CallBuckets = []time.Duration{100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2500 * time.Millisecond}

// GRPCCalls counts the gRPC calls a server answered, by method and
// status code, and times them. It keeps atomics only; Snapshot hands out
// values for whoever exports them (package node).
type GRPCCalls struct {
	methods sync.Map // full method name -> *methodCalls
}

type methodCalls struct {
	codes   [codes.Unauthenticated + 1]atomic.Uint64
	latency *histogram.Histogram
}

// MethodCalls is one method's counts.
type MethodCalls struct {
	Codes   map[string]uint64 // by status code name (OK, InvalidArgument, ...)
	Latency histogram.Snapshot
}

// Interceptor records every unary call.
func (m *GRPCCalls) Interceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	res, err := h(ctx, req)
	m.record(info.FullMethod, start, err)
	return res, err
}

// StreamInterceptor records every streaming call (a dump), timed to its
// end.
func (m *GRPCCalls) StreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	err := h(srv, ss)
	m.record(info.FullMethod, start, err)
	return err
}

func (m *GRPCCalls) record(method string, start time.Time, err error) {
	mc, ok := m.methods.Load(method)
	if !ok {
		mc, _ = m.methods.LoadOrStore(method, &methodCalls{latency: histogram.New(CallBuckets)})
	}
	c := mc.(*methodCalls)
	c.latency.Observe(time.Since(start))
	if code := status.Code(err); int(code) < len(c.codes) {
		c.codes[code].Add(1)
	}
}

// Snapshot returns the counts by full method name.
func (m *GRPCCalls) Snapshot() map[string]MethodCalls {
	out := make(map[string]MethodCalls)
	m.methods.Range(func(k, v any) bool {
		c := v.(*methodCalls)
		mc := MethodCalls{Codes: make(map[string]uint64), Latency: c.latency.Snapshot()}
		for code := range c.codes {
			if n := c.codes[code].Load(); n > 0 {
				mc.Codes[codes.Code(code).String()] = n
			}
		}
		out[k.(string)] = mc
		return true
	})
	return out
}

package api

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// GRPCMetrics counts gRPC calls by method and code and times them.
type GRPCMetrics struct {
	calls   *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

// NewGRPCMetrics registers the gRPC metrics with reg.
func NewGRPCMetrics(reg prometheus.Registerer) *GRPCMetrics {
	m := &GRPCMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "locsvc_grpc_requests_total", Help: "gRPC calls served, by method and status code.",
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "locsvc_grpc_request_duration_seconds", Help: "Time to serve a gRPC call, by method.",
			// From a fraction of a memcached round trip to a timed-out one.
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method"}),
	}
	reg.MustRegister(m.calls, m.latency)
	return m
}

// Interceptor records every unary call.
func (m *GRPCMetrics) Interceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	res, err := h(ctx, req)
	m.latency.WithLabelValues(info.FullMethod).Observe(time.Since(start).Seconds())
	m.calls.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
	return res, err
}

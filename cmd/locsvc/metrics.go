package main

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/locsvc/ringstore"
	"github.com/locsvc/locsvc/ring"
	"github.com/locsvc/locsvc/sipfront"
)

// statsCollector turns the counters each component already keeps into
// Prometheus metrics at scrape time, so the hot paths count once, in
// their own atomics, and nothing is kept twice.
type statsCollector struct {
	mem   *locsvc.MemStore
	store *ringstore.Store
	rep   *ringstore.Repairer
	mship *ring.Membership
	sip   *sipfront.Server
	// shards this node fronts, and the timeout of a call to one; their
	// item counts are read at scrape time.
	shards  []string
	timeout time.Duration
}

var (
	descStore = prometheus.NewDesc("locsvc_store_operations_total",
		"Replicated store operations, by kind (read, write, read_failure, write_failure, replica_error, failover, read_repair, read_repair_dropped, cas_conflict, corrupt_value).",
		[]string{"kind"}, nil)
	descRepair = prometheus.NewDesc("locsvc_repair_total",
		"Repair work, by kind (pass, scanned, copied, failure).", []string{"kind"}, nil)
	descRepairRunning = prometheus.NewDesc("locsvc_repair_running", "1 while a repair pass runs.", nil, nil)
	descMembers       = prometheus.NewDesc("locsvc_ring_members",
		"Cluster members known to this node, by state and liveness.", []string{"state", "alive"}, nil)
	descShards = prometheus.NewDesc("locsvc_ring_shards",
		"Storage shards in this node's ring, by health.", []string{"healthy"}, nil)
	descRecords = prometheus.NewDesc("locsvc_embedded_records",
		"AoR records held by the embedded store.", nil, nil)
	descSIPRequests = prometheus.NewDesc("locsvc_sip_requests_total",
		"SIP requests received, by method.", []string{"method"}, nil)
	descSIPResponses = prometheus.NewDesc("locsvc_sip_responses_total",
		"SIP responses sent, by status code.", []string{"code"}, nil)
	descSIPEvents = prometheus.NewDesc("locsvc_sip_events_total",
		"SIP front-end events, by kind (retransmission, parse_error, dropped, panic).", []string{"kind"}, nil)
	descSIPTCP     = prometheus.NewDesc("locsvc_sip_tcp_connections", "Open SIP TCP connections.", nil, nil)
	descSIPLimited = prometheus.NewDesc("locsvc_sip_limited_total",
		"SIP requests refused by a limit, by limit (register_rate, message_size, contacts, uri_length, field_length, path_entries; docs/limits.md).",
		[]string{"limit"}, nil)
	descShardRecords = prometheus.NewDesc("locsvc_shard_records",
		"AoR records (memcached items) held by each memcached shard this node fronts, read at scrape time.",
		[]string{"shard"}, nil)
	descMemcachedCommands = prometheus.NewDesc("locsvc_memcached_commands_total",
		"Commands this node sent to each memcached shard.", []string{"shard"}, nil)
	descMemcachedWrites = prometheus.NewDesc("locsvc_memcached_writes_total",
		"Socket writes that carried those commands: concurrent requests share writes, so commands per write is the pipeline's depth.",
		[]string{"shard"}, nil)
	descSIPAnswer = prometheus.NewDesc("locsvc_sip_answer_duration_seconds",
		"Time from a SIP request's arrival to the final answer the front end sent, by method (registrar, redirect and refusals; not responses relayed in proxy mode).",
		[]string{"method"}, nil)
)

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStore, descRepair, descRepairRunning, descMembers, descShards,
		descRecords, descSIPRequests, descSIPResponses, descSIPEvents, descSIPTCP, descSIPLimited, descSIPAnswer, descShardRecords,
		descMemcachedCommands, descMemcachedWrites} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if c.mem != nil {
		gauge(descRecords, float64(c.mem.Len()))
	}
	if s := c.store; s != nil {
		st := s.Stats()
		for kind, v := range map[string]uint64{
			"read": st.Reads, "write": st.Writes, "read_failure": st.ReadFailures,
			"write_failure": st.WriteFailures, "replica_error": st.ReplicaErrors,
			"failover": st.Failovers, "read_repair": st.ReadRepairs,
			"read_repair_dropped": st.ReadRepairsDropped, "cas_conflict": st.CASConflicts,
			"corrupt_value": st.CorruptValues,
		} {
			counter(descStore, v, kind)
		}
		for addr, tr := range s.Traffic() {
			counter(descMemcachedCommands, tr.Commands, addr)
			counter(descMemcachedWrites, tr.Writes, addr)
		}
	}
	for _, addr := range c.shards {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		st, err := ringstore.ServerStats(ctx, addr, "", c.timeout)
		cancel()
		if err == nil { // a shard that does not answer shows in locsvc_ring_shards
			gauge(descShardRecords, float64(st["curr_items"]), addr)
		}
	}
	if r := c.rep; r != nil {
		st := r.Stats()
		counter(descRepair, st.Passes, "pass")
		counter(descRepair, st.Scanned, "scanned")
		counter(descRepair, st.Copied, "copied")
		counter(descRepair, st.Failures, "failure")
		running := 0.0
		if st.Running {
			running = 1
		}
		gauge(descRepairRunning, running)
	}
	if m := c.mship; m != nil {
		members := map[[2]string]int{}
		for _, mb := range m.Members() {
			members[[2]string{mb.State.String(), strconv.FormatBool(mb.Alive)}]++
		}
		for k, n := range members {
			gauge(descMembers, float64(n), k[0], k[1])
		}
		r := m.Ring()
		gauge(descShards, float64(r.Healthy()), "true")
		gauge(descShards, float64(r.Len()-r.Healthy()), "false")
	}
	if s := c.sip; s != nil {
		st := s.Stats()
		for method, n := range st.Requests {
			counter(descSIPRequests, n, method)
		}
		for code, n := range st.Responses {
			counter(descSIPResponses, n, strconv.Itoa(code))
		}
		counter(descSIPEvents, st.Retransmissions, "retransmission")
		counter(descSIPEvents, st.ParseErrors, "parse_error")
		counter(descSIPEvents, st.Dropped, "dropped")
		counter(descSIPEvents, st.Panics, "panic")
		gauge(descSIPTCP, float64(st.TCPConns))
		for limit, n := range st.Limited {
			counter(descSIPLimited, n, limit)
		}
		for method, h := range st.AnswerTimes {
			buckets := make(map[float64]uint64, len(h.Buckets))
			for i, n := range h.Buckets {
				buckets[sipfront.AnswerBuckets[i].Seconds()] = n
			}
			ch <- prometheus.MustNewConstHistogram(descSIPAnswer, h.Count, h.Sum.Seconds(), buckets, method)
		}
	}
}

// newRegistry holds the process's metrics: Go runtime, process, and the
// components' own counters.
func newRegistry(c *statsCollector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), c)
	return reg
}

// withMetrics serves reg at /metrics beside the API.
func withMetrics(api http.Handler, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

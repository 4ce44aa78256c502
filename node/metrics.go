package node

import (
	"net/http"
	"net/http/pprof"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/locsvc/locsvc/api"
	"github.com/locsvc/locsvc/internal/histogram"
	"github.com/locsvc/locsvc/locsvc/ringstore"
	"github.com/locsvc/locsvc/ring"
	"github.com/locsvc/locsvc/sipfront"
)

// collector turns the counters each component already keeps into
// Prometheus metrics at scrape time, from the components' value
// snapshots, so the hot paths count once, in their own atomics, and
// nothing is kept twice. The only I/O is the shards' item counts, read
// through cluster.shardRecords' shared, bounded reading; the AoR and
// binding counts come from a background count (counts.go).
type collector struct {
	n    *Node
	grpc *api.GRPCCalls
}

var (
	descStore = prometheus.NewDesc("locsvc_store_operations_total",
		"Replicated store operations, by kind (read, write, read_failure, write_failure, replica_error, failover, read_repair, read_repair_dropped, cas_conflict, corrupt_value).",
		[]string{"kind"}, nil)
	descRepair = prometheus.NewDesc("locsvc_repair_total",
		"Repair work, by kind (pass, scanned, copied, failure); a hand-off (drain, --leave-on-stop) is a pass too.", []string{"kind"}, nil)
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
		"SIP front-end events, by kind (retransmission, parse_error, dropped, panic, ws_refused).", []string{"kind"}, nil)
	descSIPTCP       = prometheus.NewDesc("locsvc_sip_tcp_connections", "Open SIP TCP connections (TLS included).", nil, nil)
	descSIPWS        = prometheus.NewDesc("locsvc_sip_ws_connections", "Open SIP WebSocket connections (ws and wss).", nil, nil)
	descSIPNATPinged = prometheus.NewDesc("locsvc_sip_nat_pinged", "Phones behind NAT this node keeps alive (--nat-ping): its own, and those it took over.", nil, nil)
	descSIPLimited   = prometheus.NewDesc("locsvc_sip_limited_total",
		"SIP requests refused by a limit, by limit (register_rate, message_size, contacts, uri_length, field_length, path_entries; docs/limits.md).",
		[]string{"limit"}, nil)
	descSIPShed = prometheus.NewDesc("locsvc_sip_shed_total",
		"New SIP requests refused with 503 to shed load, by reason (queue_delay: overload control, a request waited too long; in_flight: overload control, the handler slots for new work were all taken; register_rate: --register-rate).",
		[]string{"reason"}, nil)
	descSIPQueue = prometheus.NewDesc("locsvc_sip_queue_delay_seconds",
		"Time UDP requests waited between reaching the host and being read (measured while overload control is on).", nil, nil)
	descSIPOverloadDelay = prometheus.NewDesc("locsvc_sip_overload_min_delay_seconds",
		"Overload control's signal: the shortest queueing delay of its last window.", nil, nil)
	descSIPOverloadStanding = prometheus.NewDesc("locsvc_sip_overload_standing",
		"1 while overload control sees a standing queue and refuses new requests that waited past --overload-target.", nil, nil)
	descSIPOverloadLoss = prometheus.NewDesc("locsvc_sip_overload_loss_ratio",
		"Share of requests overload control refused in its last window (what --overload-oc asks upstream proxies to drop).", nil, nil)
	descSIPOverloadBooked = prometheus.NewDesc("locsvc_sip_overload_appointments",
		"Phones refused for overload and told when to come back (their Retry-After), not back yet.", nil, nil)
	descSIPOverloadKept = prometheus.NewDesc("locsvc_sip_overload_appointments_kept_total",
		"Phones that came back when told and were taken ahead of new ones.", nil, nil)
	descSIPOverloadWork = prometheus.NewDesc("locsvc_sip_overload_work_limit",
		"How many new REGISTERs and INVITEs overload control lets the node have in hand at once: 128 from a refusal until a second without one, 1,024 otherwise (0: no bound, proxy mode).", nil, nil)
	descAoRs = prometheus.NewDesc("locsvc_aors",
		"AoRs with live bindings whose first live replica is a shard this node fronts (the embedded store: all), counted every minute (node.Config.CountInterval); sum over the nodes for the cluster.",
		nil, nil)
	descBindings = prometheus.NewDesc("locsvc_bindings",
		"Live bindings (contacts) of the AoRs in locsvc_aors.", nil, nil)
	descCountedAt = prometheus.NewDesc("locsvc_counted_timestamp_seconds",
		"When the count behind locsvc_aors and locsvc_bindings last completed (Unix time); a failed count keeps the figures before it.",
		nil, nil)
	descShardRecords = prometheus.NewDesc("locsvc_shard_records",
		"AoR records (memcached items) held by each memcached shard this node fronts, read at most once a second.",
		[]string{"shard"}, nil)
	descMemcachedCommands = prometheus.NewDesc("locsvc_memcached_commands_total",
		"Commands this node sent to each memcached shard.", []string{"shard"}, nil)
	descMemcachedWrites = prometheus.NewDesc("locsvc_memcached_writes_total",
		"Socket writes that carried those commands: concurrent requests share writes, so commands per write is the pipeline's depth.",
		[]string{"shard"}, nil)
	descGRPCCalls = prometheus.NewDesc("locsvc_grpc_requests_total",
		"gRPC calls served, by method and status code.", []string{"method", "code"}, nil)
	descGRPCLatency = prometheus.NewDesc("locsvc_grpc_request_duration_seconds",
		"Time to serve a gRPC call, by method.", []string{"method"}, nil)
	descSIPAnswer = prometheus.NewDesc("locsvc_sip_answer_duration_seconds",
		"Time from a SIP request's arrival to the final answer the front end sent, by method (registrar, redirect and refusals; not responses relayed in proxy mode).",
		[]string{"method"}, nil)
)

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStore, descRepair, descRepairRunning, descMembers, descShards,
		descRecords, descSIPRequests, descSIPResponses, descSIPEvents, descSIPTCP, descSIPNATPinged, descSIPLimited, descSIPAnswer, descShardRecords,
		descSIPWS, descSIPShed, descSIPQueue, descSIPOverloadDelay, descSIPOverloadStanding, descSIPOverloadLoss,
		descSIPOverloadBooked, descSIPOverloadKept, descSIPOverloadWork,
		descMemcachedCommands, descMemcachedWrites, descGRPCCalls, descGRPCLatency, descAoRs, descBindings, descCountedAt} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	e := emitter{ch}
	if m := c.n.mem; m != nil {
		e.gauge(descRecords, float64(m.Len()))
	}
	if cl := c.n.cluster; cl != nil {
		e.store(cl.store.Stats(), cl.store.Traffic())
		for addr, n := range cl.shardRecords() {
			e.gauge(descShardRecords, float64(n), addr)
		}
		e.repair(cl.rep.Stats())
		e.ring(cl.mship.Members(), cl.mship.Ring())
	}
	if s := c.n.sip; s != nil {
		e.sip(s.Stats())
	}
	if t := c.n.counts; t != nil {
		if counts, at := t.get(); !at.IsZero() {
			e.gauge(descAoRs, float64(counts.AoRs))
			e.gauge(descBindings, float64(counts.Bindings))
			e.gauge(descCountedAt, float64(at.UnixNano())/1e9)
		}
	}
	for method, mc := range c.grpc.Snapshot() {
		for code, n := range mc.Codes {
			e.counter(descGRPCCalls, n, method, code)
		}
		e.histogram(descGRPCLatency, mc.Latency, method)
	}
}

// emitter writes one scrape's metrics.
type emitter struct{ ch chan<- prometheus.Metric }

func (e emitter) counter(d *prometheus.Desc, v uint64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func (e emitter) gauge(d *prometheus.Desc, v float64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func (e emitter) histogram(d *prometheus.Desc, h histogram.Snapshot, labels ...string) {
	buckets := make(map[float64]uint64, len(h.Buckets))
	for i, n := range h.Buckets {
		buckets[h.Bounds[i].Seconds()] = n
	}
	e.ch <- prometheus.MustNewConstHistogram(d, h.Count, h.Sum.Seconds(), buckets, labels...)
}

func (e emitter) store(st ringstore.Stats, traffic map[string]ringstore.ShardTraffic) {
	for kind, v := range map[string]uint64{
		"read": st.Reads, "write": st.Writes, "read_failure": st.ReadFailures,
		"write_failure": st.WriteFailures, "replica_error": st.ReplicaErrors,
		"failover": st.Failovers, "read_repair": st.ReadRepairs,
		"read_repair_dropped": st.ReadRepairsDropped, "cas_conflict": st.CASConflicts,
		"corrupt_value": st.CorruptValues,
	} {
		e.counter(descStore, v, kind)
	}
	for addr, tr := range traffic {
		e.counter(descMemcachedCommands, tr.Commands, addr)
		e.counter(descMemcachedWrites, tr.Writes, addr)
	}
}

func (e emitter) repair(st ringstore.RepairStats) {
	e.counter(descRepair, st.Passes, "pass")
	e.counter(descRepair, st.Scanned, "scanned")
	e.counter(descRepair, st.Copied, "copied")
	e.counter(descRepair, st.Failures, "failure")
	running := 0.0
	if st.Running {
		running = 1
	}
	e.gauge(descRepairRunning, running)
}

func (e emitter) ring(ms []ring.Member, r *ring.Ring) {
	members := map[[2]string]int{}
	for _, mb := range ms {
		members[[2]string{mb.State.String(), strconv.FormatBool(mb.Alive)}]++
	}
	for k, n := range members {
		e.gauge(descMembers, float64(n), k[0], k[1])
	}
	e.gauge(descShards, float64(r.Healthy()), "true")
	e.gauge(descShards, float64(r.Len()-r.Healthy()), "false")
}

func (e emitter) sip(st sipfront.Stats) {
	for method, n := range st.Requests {
		e.counter(descSIPRequests, n, method)
	}
	for code, n := range st.Responses {
		e.counter(descSIPResponses, n, strconv.Itoa(code))
	}
	e.counter(descSIPEvents, st.Retransmissions, "retransmission")
	e.counter(descSIPEvents, st.ParseErrors, "parse_error")
	e.counter(descSIPEvents, st.Dropped, "dropped")
	e.counter(descSIPEvents, st.Panics, "panic")
	e.gauge(descSIPTCP, float64(st.TCPConns))
	e.gauge(descSIPWS, float64(st.WSConns))
	e.counter(descSIPEvents, st.WSRefused, "ws_refused")
	e.counter(descSIPEvents, st.FlowsUnbound, "flow_unbound")
	e.counter(descSIPEvents, st.NATPings, "nat_ping")
	e.counter(descSIPEvents, st.NATAnswers, "nat_ping_answered")
	e.counter(descSIPEvents, st.NATMisses, "nat_ping_missed")
	e.counter(descSIPEvents, st.NATUnbound, "nat_unbound")
	e.gauge(descSIPNATPinged, float64(st.NATPinged))
	for limit, n := range st.Limited {
		e.counter(descSIPLimited, n, limit)
	}
	for method, h := range st.AnswerTimes {
		e.histogram(descSIPAnswer, h, method)
	}
	for reason, n := range st.Shed {
		e.counter(descSIPShed, n, reason)
	}
	e.histogram(descSIPQueue, st.QueueDelay)
	e.gauge(descSIPOverloadDelay, st.Overload.MinDelay.Seconds())
	standing := 0.0
	if st.Overload.Standing {
		standing = 1
	}
	e.gauge(descSIPOverloadStanding, standing)
	e.gauge(descSIPOverloadLoss, float64(st.Overload.Loss)/100)
	e.gauge(descSIPOverloadBooked, float64(st.Overload.Booked))
	e.counter(descSIPOverloadKept, uint64(st.Overload.Kept))
	e.gauge(descSIPOverloadWork, float64(st.Overload.WorkLimit))
}

// metrics is a node's Prometheus registry: Go runtime, process, the gRPC
// calls, and the components' own counters through collector.
type metrics struct {
	reg  *prometheus.Registry
	grpc api.GRPCCalls
}

func newMetrics(n *Node) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collector{n: n, grpc: &m.grpc})
	return m
}

// Registry is the node's metrics, as GET /metrics serves them.
func (n *Node) Registry() *prometheus.Registry { return n.metrics.reg }

// handler serves the registry at /metrics beside the API.
func (m *metrics) handler(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	return mux
}

// withPprof adds Go's profiler under /debug/pprof/ (--pprof): how the
// figures in docs/BENCHMARKS.md are explained.
func withPprof(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

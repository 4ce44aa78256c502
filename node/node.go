package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/locsvc/locsvc/api"
	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/internal/apitoken"
	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/sipfront"
)

// Node is one running locsvc node. Start builds it; Stop ends it.
type Node struct {
	cfg Config
	log *slog.Logger

	mem     *locsvc.MemStore // the embedded store, or nil
	cluster *cluster         // the memcached ring, or nil
	remote  *grpc.ClientConn // Locator's connection, or nil

	api     *api.Server // nil with Locator
	http    *api.HTTP
	sip     *sipfront.Server // nil without SIP
	grpcSrv *grpc.Server     // nil with Locator
	httpSrv *http.Server
	grpcLn  net.Listener
	httpLn  net.Listener
	metrics *metrics
	counts  *tableCounts   // nil with nothing of its own to count
	info    api.Info       // advertised addresses (addrs.go)
	tokens  *apitoken.File // --api-token, or nil

	errc     chan error
	stopOnce sync.Once

	// forGood makes Stop leave the cluster with the hand-off rather than
	// for a restart: set by LeaveOnStop, or by Leave.
	forGood atomic.Bool
	leaveMu sync.Mutex
	leaving bool          // Leave has begun: later calls wait for it
	left    chan struct{} // closed when Leave's hand-off is over
}

// announced are the addresses a node serves on, as gossip tells the others.
type announced struct{ grpc, http, sip string }

// Start validates cfg, opens the listeners, builds the store (the embedded
// one, the memcached ring, or a remote cluster's client), the service, the
// APIs and the SIP front end, and serves until Stop. ctx bounds start-up
// only (a ctx that ended by the time the store is open fails Start);
// cancelling it later does not stop the node.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, &ConfigError{err}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, log: log, errc: make(chan error, 2), left: make(chan struct{})}
	n.forGood.Store(cfg.LeaveOnStop)
	ok := false
	defer func() {
		if !ok {
			n.closeAll(context.Background())
		}
	}()
	if cfg.APIToken != "" {
		var err error
		if n.tokens, err = apitoken.Open(cfg.APIToken, log.With("component", "api")); err != nil {
			return nil, &ConfigError{fmt.Errorf("--api-token: %w", err)}
		}
	}
	if err := n.listen(); err != nil {
		return nil, err
	}
	loc, err := n.openStore()
	if err != nil {
		return nil, err
	}
	// Joining the ring is the slow step; a caller that gave up meanwhile
	// gets no node.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var peers sipfront.Peers
	if n.cluster != nil {
		peers = n.cluster.peers
	}
	if n.sip, err = startSIP(&n.cfg, loc, peers, log); err != nil {
		return nil, err
	}
	if n.cluster != nil && n.sip != nil && n.sip.NATPinging() {
		n.cluster.startNATWalks(n.sip)
	}
	n.counts = n.startCounts()
	n.metrics = newMetrics(n)
	n.serveAPI()
	ok = true
	var sipAddr, sipTLSAddr, sipWSAddr, sipWSSAddr string
	if n.sip != nil {
		sipAddr, sipTLSAddr, sipWSAddr, sipWSSAddr = n.sip.Addr(), n.sip.TLSAddr(), n.sip.WSAddr(), n.sip.WSSAddr()
	}
	n.warnPlainToken()
	log.Info("locsvc serving", "node", cfg.NodeID, "memcached", cfg.Memcached, "locator", cfg.Locator,
		"grpc", n.grpcBound(), "http", n.httpLn.Addr().String(), "advertised_grpc", n.info.GRPCAddr,
		"advertised_http", n.info.HTTPAddr, "tls", cfg.ServerTLS != nil, "mtls", cfg.clientCerts(), "api_token", n.tokens != nil,
		"memcached_tls", cfg.MemcachedTLS != nil,
		"sip", sipAddr, "sip_tls", sipTLSAddr, "sip_ws", sipWSAddr, "sip_wss", sipWSSAddr, "sip_mode", cfg.SIPMode)
	return n, nil
}

// ConfigError is a Config that Validate or a file it names refused: the
// caller's mistake, not the node's.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// listen opens the gRPC (unless Locator) and HTTP listeners, so that the
// addresses gossip announces have the bound ports (port 0 resolved).
func (n *Node) listen() error {
	var err error
	if n.httpLn, err = net.Listen("tcp", n.cfg.HTTP); err != nil {
		return fmt.Errorf("--http: %w", err)
	}
	c := &n.cfg
	n.info = api.Info{
		NodeID: c.NodeID, Version: c.Version, StartedAt: time.Now(), Replicas: c.Replicas,
		HTTPAddr: advertiseAddr(n.httpLn.Addr().String(), c.HTTPAdvertise, c.Advertise),
		SIPAddr:  advertiseAddr(c.SIP, c.sipAdvertise(), ""), WalkRate: c.RepairRate,
	}
	if c.Locator == "" {
		if n.grpcLn, err = net.Listen("tcp", c.GRPC); err != nil {
			return fmt.Errorf("--grpc: %w", err)
		}
		n.info.GRPCAddr = advertiseAddr(n.grpcLn.Addr().String(), c.GRPCAdvertise, c.Advertise)
	}
	return nil
}

// grpcBound is the bound gRPC address ("" with Locator).
func (n *Node) grpcBound() string {
	if n.grpcLn == nil {
		return ""
	}
	return n.grpcLn.Addr().String()
}

// openStore builds what the node serves from and returns it as the SIP
// front end's Locator.
func (n *Node) openStore() (sipfront.Locator, error) {
	if n.cfg.Locator != "" {
		return n.openRemote()
	}
	var store locsvc.Store
	if n.cfg.Embedded() {
		n.mem = locsvc.NewMemStore(nil, embeddedSweep)
		store = n.mem
	} else {
		c, err := openCluster(&n.cfg, announced{grpc: n.info.GRPCAddr, http: n.info.HTTPAddr, sip: n.info.SIPAddr}, n.log)
		if err != nil {
			return nil, err
		}
		n.cluster, store = c, c.store
	}
	svc, err := locsvc.NewService(store, n.cfg.Limits, n.cfg.NodeID)
	if err != nil {
		return nil, &ConfigError{err}
	}
	var status api.StatusSource
	if n.cluster != nil {
		status = n.cluster
	}
	n.api = api.NewServer(svc, n.info, status)
	if n.cluster != nil {
		n.api.SetDrain(n.Leave)
	}
	return svc, nil
}

// embeddedSweep is how often the embedded store drops expired bindings.
const embeddedSweep = 10 * time.Second

// openRemote dials Locator: the SIP front end then runs against that
// cluster through the gRPC client.
func (n *Node) openRemote() (sipfront.Locator, error) {
	addr := strings.TrimPrefix(n.cfg.Locator, "grpc://")
	creds := insecure.NewCredentials()
	if n.cfg.LocatorTLS != nil {
		creds = credentials.NewTLS(n.cfg.LocatorTLS)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if n.tokens != nil {
		opts = append(opts, grpc.WithPerRPCCredentials(api.BearerToken(n.tokens.Token)))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, &ConfigError{fmt.Errorf("--locator: %w", err)}
	}
	n.remote = conn
	return api.NewClient(conn), nil
}

// serveAPI starts gRPC (unless Locator) and HTTP on their listeners.
// With a token, every RPC and every route asks for it but those
// api.Auth leaves open.
func (n *Node) serveAPI() {
	var auth *api.Auth
	if n.tokens != nil {
		auth = api.NewAuth(n.tokens, n.cfg.openPaths()...)
	}
	if n.api != nil {
		// Stream workers: calls run on standing goroutines, whose stacks
		// have already grown, instead of a new goroutine per call (the
		// same cost the store's replica workers avoid).
		unary := []grpc.UnaryServerInterceptor{n.metrics.grpc.Interceptor}
		stream := []grpc.StreamServerInterceptor{n.metrics.grpc.StreamInterceptor}
		opts := []grpc.ServerOption{grpc.NumStreamWorkers(uint32(4 * runtime.GOMAXPROCS(0)))}
		if auth != nil {
			// After the counting: refused calls show in
			// locsvc_grpc_requests_total as Unauthenticated.
			unary = append(unary, auth.Unary)
			stream = append(stream, auth.Stream)
		}
		opts = append(opts, grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...))
		if n.cfg.ServerTLS != nil {
			opts = append(opts, grpc.Creds(credentials.NewTLS(n.cfg.ServerTLS.Clone())))
		}
		n.grpcSrv = grpc.NewServer(opts...)
		n.api.RegisterGRPC(n.grpcSrv)
		n.api.SetServing(true)
		go func() { n.errc <- n.grpcSrv.Serve(n.grpcLn) }()
	}
	n.http = api.NewHTTP(n.api, n.Ready)
	handler := n.metrics.handler(n.http.Handler())
	if n.cfg.Pprof {
		handler = withPprof(handler)
	}
	if auth != nil {
		handler = auth.HTTP(handler)
	}
	// ErrorLog: net/http reports failed TLS handshakes there (a client
	// without a certificate, a scanner); keep them in the structured log.
	n.httpSrv = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelWarn)}
	if n.cfg.ServerTLS != nil {
		// ServeTLS adds h2 and http/1.1 to a clone of this, and takes the
		// certificate from GetCertificate when given no files.
		n.httpSrv.TLSConfig = n.cfg.ServerTLS.Clone()
		go func() { n.errc <- n.httpSrv.ServeTLS(n.httpLn, "", "") }()
	} else {
		go func() { n.errc <- n.httpSrv.Serve(n.httpLn) }()
	}
}

// Err delivers the first error of a server that stopped on its own.
func (n *Node) Err() <-chan error { return n.errc }

// Info is what the node reports about itself, with the bound addresses.
func (n *Node) Info() api.Info { return n.info }

// SIPAddr, SIPWSAddr and SIPWSSAddr are the SIP front end's bound
// addresses: UDP and TCP, WebSocket, secure WebSocket ("" when not
// served).
func (n *Node) SIPAddr() string {
	if n.sip == nil {
		return ""
	}
	return n.sip.Addr()
}

func (n *Node) SIPWSAddr() string {
	if n.sip == nil {
		return ""
	}
	return n.sip.WSAddr()
}

func (n *Node) SIPWSSAddr() string {
	if n.sip == nil {
		return ""
	}
	return n.sip.WSSAddr()
}

// Ready reports whether the node can serve requests now: nil, or why not.
func (n *Node) Ready() error {
	if n.cluster != nil {
		return n.cluster.ready()
	}
	return nil
}

// Drain turns readiness and gRPC health off so that load balancers move
// away, while every server still answers.
func (n *Node) Drain() {
	if n.http != nil {
		n.http.Drain()
	}
	if n.api != nil {
		n.api.SetServing(false)
	}
}

// Leave takes the node out of the cluster for good, at an operator's
// request (AdminService.Drain, `locsvc drain`): readiness fails so that
// load balancers move away, the node hands the records of its shards off
// while it still answers calls (through the ring without its shards), and
// then Left is closed: the caller should Stop it, which leaves gossip
// without a second hand-off. Leave returns what the hand-off did, or
// ctx's error if ctx ends first; the hand-off goes on regardless, bounded
// by HandoffTimeout, since a node that announced leaving must finish.
// Calling it again waits for the same hand-off.
func (n *Node) Leave(ctx context.Context) (*locsvcv1.DrainResponse, error) {
	if n.cluster == nil {
		return nil, errors.New("not a member of a ring: nothing to leave")
	}
	n.leaveMu.Lock()
	if !n.leaving {
		if err := n.cluster.canLeave(); err != nil {
			n.leaveMu.Unlock()
			return nil, err
		}
		n.leaving = true
		n.forGood.Store(true)
		n.Drain()
		n.log.Info("leaving the cluster for good: handing the records off", "shards", n.cfg.Memcached)
		go func() {
			defer close(n.left)
			hctx, cancel := context.WithTimeout(context.Background(), n.cfg.HandoffTimeout)
			defer cancel()
			n.cluster.handOffOnce(hctx)
		}()
	}
	n.leaveMu.Unlock()
	select {
	case <-n.left:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	h := n.cluster.handOffOnce(ctx) // done: returns its result at once
	return &locsvcv1.DrainResponse{NodeId: n.cfg.NodeID, KeysScanned: h.Scanned, KeysCopied: h.Copied,
		Failures: h.Failures, Complete: h.complete}, nil
}

// Left is closed once Leave has handed the node's records off: the node
// should then be stopped (`locsvc serve` does, and exits 0).
func (n *Node) Left() <-chan struct{} { return n.left }

// Stop drains the node and ends it: the SIP front end stops taking
// requests and finishes those in hand, in-flight gRPC and HTTP calls
// finish (within DrainTimeout), then the node leaves the ring and
// everything closes. By default that is a restart: its shards stay in
// placement for RestartGrace and nothing is copied. With LeaveOnStop, or
// after Leave, it leaves for good: it hands its records off first
// (cluster.handOff). ctx bounds the whole; Stop may be called more than
// once.
func (n *Node) Stop(ctx context.Context) {
	n.stopOnce.Do(func() {
		n.Drain()
		n.closeAll(ctx)
		n.log.Info("stopped")
	})
}

// closeAll closes whatever has been built, in reverse order of Start.
func (n *Node) closeAll(ctx context.Context) {
	if n.cluster != nil {
		n.cluster.stopNATWalks()
	}
	if n.sip != nil {
		if err := n.sip.Close(); err != nil {
			n.log.Warn("sip shutdown", "err", err)
		}
	}
	if n.api != nil {
		// Dumps and counts may run for minutes: end them rather than let
		// them hold the drain up.
		n.api.StopWalks()
	}
	dctx, cancel := context.WithTimeout(ctx, n.cfg.DrainTimeout)
	defer cancel()
	if n.grpcSrv != nil {
		stopped := make(chan struct{})
		go func() { n.grpcSrv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-dctx.Done():
			n.grpcSrv.Stop()
		}
	} else if n.grpcLn != nil {
		n.grpcLn.Close()
	}
	if n.httpSrv != nil {
		if err := n.httpSrv.Shutdown(dctx); err != nil {
			n.log.Warn("http shutdown", "err", err)
		}
	} else if n.httpLn != nil {
		n.httpLn.Close()
	}
	n.counts.close()
	switch {
	case n.cluster != nil:
		n.cluster.close(ctx, n.forGood.Load())
	case n.mem != nil:
		n.mem.Close()
	case n.remote != nil:
		n.remote.Close()
	}
}

// ServeErr filters the error a server returns when Stop closed it.
func ServeErr(err error) error {
	if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// GossipAddr is the node's bound gossip address ("" on the embedded store
// or with Locator).
func (n *Node) GossipAddr() string {
	if n.cluster == nil {
		return ""
	}
	return n.cluster.mship.LocalAddr()
}

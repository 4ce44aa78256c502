package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/locsvc/locsvc/api"
	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/sipfront"
)

// drainTimeout bounds how long in-flight calls may take once SIGTERM
// arrives before the servers are closed under them.
const drainTimeout = 10 * time.Second

func serve(args []string) error {
	var cfg config
	fs, finish := serveFlags(&cfg)
	if err := parseFlags(fs, args); err != nil {
		return usageError{err}
	}
	if err := finish(); err != nil {
		return usageError{err}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	srvTLS, err := cfg.Sec.serverTLS(log)
	if err != nil {
		return usageError{err}
	}

	httpLn, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		return fmt.Errorf("--http: %w", err)
	}
	info := api.Info{
		NodeID: cfg.NodeID, Version: version, StartedAt: time.Now(), Replicas: cfg.Replicas,
		HTTPAddr: httpLn.Addr().String(), SIPAddr: cfg.SIP,
	}
	// With --locator the node is only a SIP front end for a remote cluster:
	// no store, no gRPC service of its own.
	var grpcLn net.Listener
	if cfg.Locator == "" {
		if grpcLn, err = net.Listen("tcp", cfg.GRPC); err != nil {
			httpLn.Close()
			return fmt.Errorf("--grpc: %w", err)
		}
		info.GRPCAddr = grpcLn.Addr().String()
	}
	closeListeners := func() {
		httpLn.Close()
		if grpcLn != nil {
			grpcLn.Close()
		}
	}

	var be *backend
	var loc sipfront.Locator
	var apiSrv *api.Server
	if cfg.Locator != "" {
		be, loc, err = openRemote(&cfg)
	} else {
		be, err = openBackend(&cfg, info, log)
	}
	if err != nil {
		closeListeners()
		return err
	}
	if cfg.Locator == "" {
		svc, err := locsvc.NewService(be.store, cfg.Limits, cfg.NodeID)
		if err != nil {
			closeListeners()
			be.stop(context.Background())
			return usageError{err}
		}
		loc = svc
		apiSrv = api.NewServer(svc, info, be.status)
	}
	sipSrv, err := startSIP(&cfg, loc, log)
	if err != nil {
		closeListeners()
		be.stop(context.Background())
		return err
	}

	be.metrics.sip = sipSrv
	reg := newRegistry(&be.metrics)
	errc := make(chan error, 2)
	var grpcSrv *grpc.Server
	if apiSrv != nil {
		// Stream workers: calls run on standing goroutines, whose stacks
		// have already grown, instead of a new goroutine per call (the
		// same cost the store's replica workers avoid).
		opts := []grpc.ServerOption{grpc.UnaryInterceptor(api.NewGRPCMetrics(reg).Interceptor),
			grpc.NumStreamWorkers(uint32(4 * runtime.GOMAXPROCS(0)))}
		if srvTLS != nil {
			opts = append(opts, grpc.Creds(credentials.NewTLS(srvTLS.Clone())))
		}
		grpcSrv = grpc.NewServer(opts...)
		apiSrv.RegisterGRPC(grpcSrv)
		apiSrv.SetServing(true)
		go func() { errc <- grpcSrv.Serve(grpcLn) }()
	}
	httpAPI := api.NewHTTP(apiSrv, be.ready)
	handler := withMetrics(httpAPI.Handler(), reg)
	if cfg.Pprof {
		handler = withPprof(handler)
	}
	// ErrorLog: net/http reports failed TLS handshakes there (a client
	// without a certificate, a scanner); keep them in the structured log.
	httpSrv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	if srvTLS != nil {
		// ServeTLS adds h2 and http/1.1 to a clone of this, and takes the
		// certificate from GetCertificate when given no files.
		httpSrv.TLSConfig = srvTLS.Clone()
		go func() { errc <- httpSrv.ServeTLS(httpLn, "", "") }()
	} else {
		go func() { errc <- httpSrv.Serve(httpLn) }()
	}
	sipAddr, sipTLSAddr := "", ""
	if sipSrv != nil {
		sipAddr, sipTLSAddr = sipSrv.Addr(), sipSrv.TLSAddr()
	}
	log.Info("locsvc serving", "node", cfg.NodeID, "memcached", cfg.Memcached, "locator", cfg.Locator,
		"grpc", info.GRPCAddr, "http", info.HTTPAddr, "tls", srvTLS != nil, "mtls", cfg.Sec.ClientCAFile != "",
		"sip", sipAddr, "sip_tls", sipTLSAddr, "sip_mode", cfg.SIPMode)

	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigc)
	var serveErr error
	select {
	case sig := <-sigc:
		log.Info("shutting down", "signal", sig.String())
	case serveErr = <-errc:
		log.Error("server failed", "err", serveErr)
	}

	// Drain: readiness and gRPC health fail first so balancers move away,
	// the SIP front end stops taking requests and finishes those in hand,
	// in-flight calls finish (bounded), then the node hands off its
	// records and leaves the ring, then everything closes.
	httpAPI.Drain()
	if apiSrv != nil {
		apiSrv.SetServing(false)
	}
	if sipSrv != nil {
		if err := sipSrv.Close(); err != nil {
			log.Warn("sip shutdown", "err", err)
		}
	}
	if grpcSrv != nil {
		stopped := make(chan struct{})
		go func() { grpcSrv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(drainTimeout):
			grpcSrv.Stop()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(ctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	be.stop(context.Background())
	log.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
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

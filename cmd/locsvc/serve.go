package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/locsvc/locsvc/api"
	"github.com/locsvc/locsvc/locsvc"
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
	if err := checkNotYet(&cfg, log); err != nil {
		return usageError{err}
	}

	grpcLn, err := net.Listen("tcp", cfg.GRPC)
	if err != nil {
		return fmt.Errorf("--grpc: %w", err)
	}
	httpLn, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		grpcLn.Close()
		return fmt.Errorf("--http: %w", err)
	}

	info := api.Info{
		NodeID: cfg.NodeID, Version: version, StartedAt: time.Now(), Replicas: cfg.Replicas,
		GRPCAddr: grpcLn.Addr().String(), HTTPAddr: httpLn.Addr().String(),
	}
	be, err := openBackend(&cfg, info, log)
	if err != nil {
		grpcLn.Close()
		httpLn.Close()
		return err
	}
	svc, err := locsvc.NewService(be.store, cfg.Limits, cfg.NodeID)
	if err != nil {
		return usageError{err}
	}
	apiSrv := api.NewServer(svc, info, be.status)
	grpcSrv := grpc.NewServer()
	apiSrv.RegisterGRPC(grpcSrv)
	apiSrv.SetServing(true)
	httpAPI := api.NewHTTP(apiSrv, be.ready)
	httpSrv := &http.Server{Handler: httpAPI.Handler(), ReadHeaderTimeout: 10 * time.Second}

	errc := make(chan error, 2)
	go func() { errc <- grpcSrv.Serve(grpcLn) }()
	go func() { errc <- httpSrv.Serve(httpLn) }()
	log.Info("locsvc serving", "node", cfg.NodeID, "memcached", cfg.Memcached, "grpc", info.GRPCAddr, "http", info.HTTPAddr)

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
	// then in-flight calls finish (bounded), then the node hands off its
	// records and leaves the ring, then everything closes.
	httpAPI.Drain()
	apiSrv.SetServing(false)
	stopped := make(chan struct{})
	go func() { grpcSrv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(drainTimeout):
		grpcSrv.Stop()
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

// checkNotYet refuses, or warns about, flags whose feature this build does
// not have yet, so that nothing an operator sets is silently ignored.
func checkNotYet(cfg *config, log *slog.Logger) error {
	if cfg.SIP != "" {
		log.Warn("the SIP front end is not in this build yet: --sip, --sip-mode, --domain, --trusted, --credentials " +
			"and --allow-open have no effect; use the gRPC API")
	}
	return nil
}

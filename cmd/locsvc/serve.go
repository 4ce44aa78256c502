package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/locsvc/locsvc/node"
)

// serve runs a node until SIGTERM or SIGINT, then stops it (node.Stop:
// drain calls, then leave for a restart, or for good with the hand-off
// under --leave-on-stop); or until `locsvc drain` has had it hand its
// records off, then stops it too, and exits 0.
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
	if err := cfg.Sec.apply(&cfg, log); err != nil {
		return usageError{err}
	}
	cfg.Version = version
	n, err := node.Start(context.Background(), cfg.Config, log)
	var cerr *node.ConfigError
	if errors.As(err, &cerr) {
		return usageError{err}
	}
	if err != nil {
		return err
	}

	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigc)
	var serveErr error
	select {
	case sig := <-sigc:
		log.Info("shutting down", "signal", sig.String())
	case serveErr = <-n.Err():
		log.Error("server failed", "err", serveErr)
	case <-n.Left():
		log.Info("drained: leaving the cluster")
	}
	n.Stop(context.Background())
	return node.ServeErr(serveErr)
}

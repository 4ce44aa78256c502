package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/locsvc/locsvc/api"
	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/locsvc/ringstore"
	"github.com/locsvc/locsvc/ring"
	"github.com/locsvc/locsvc/sipfront"
)

// backend is the storage a node serves from: the embedded store, or the
// memcached ring with its membership and repair.
type backend struct {
	store  locsvc.Store
	status api.StatusSource // nil for the embedded store
	ready  func() error
	// metrics reads the components' counters (some fields nil).
	metrics statsCollector
	// stop leaves the cluster (handing records off first) and closes.
	stop func(ctx context.Context)
}

func openBackend(cfg *config, addrs api.Info, log *slog.Logger) (*backend, error) {
	if len(cfg.Memcached) == 0 && len(cfg.Join) == 0 {
		mem := locsvc.NewMemStore(nil, 10*time.Second)
		return &backend{store: mem, stop: func(context.Context) { mem.Close() }, metrics: statsCollector{mem: mem}}, nil
	}
	var key []byte
	if cfg.GossipKeyFile != "" {
		var err error
		if key, err = readKeyFile(cfg.GossipKeyFile); err != nil {
			return nil, usageError{fmt.Errorf("--gossip-key: %w", err)}
		}
	}
	var keyring [][]byte
	if cfg.Sec.GossipKeyring != "" {
		var err error
		if keyring, err = readKeyring(cfg.Sec.GossipKeyring); err != nil {
			return nil, usageError{fmt.Errorf("--gossip-keyring: %w", err)}
		}
	}
	shards := make([]ring.ShardStatus, len(cfg.Memcached))
	for i, a := range cfg.Memcached {
		shards[i] = ring.ShardStatus{Addr: a}
	}
	mship, err := ring.Start(ring.Config{
		NodeID: cfg.NodeID, BindAddr: cfg.Gossip, Join: cfg.Join, Profile: cfg.GossipProfile, SecretKey: key, Keys: keyring,
		Meta: ring.Meta{
			NodeID: cfg.NodeID, GRPC: addrs.GRPCAddr, HTTP: addrs.HTTPAddr, SIP: addrs.SIPAddr, Zone: cfg.Zone,
			State: ring.StateActive, Shards: shards,
		},
		HealthCheck: func(ctx context.Context, addr string) (uint64, error) {
			return ringstore.Probe(ctx, addr, cfg.MemcachedTimeout)
		},
		Logger: log.With("component", "gossip"),
	})
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	store := ringstore.New(mship, ringstore.Config{
		Replicas: cfg.Replicas, WriteQuorum: cfg.WriteQuorum, Timeout: cfg.MemcachedTimeout, ConnsPerShard: cfg.MemcachedConns,
		Logger: log.With("component", "store"),
	})
	rep := store.NewRepairer(cfg.Memcached, cfg.RepairRate, 5*time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	changes, unsubscribe := mship.Subscribe()
	repairDone := make(chan struct{})
	go func() { defer close(repairDone); rep.Run(ctx, changes) }()
	rep.Trigger() // a node that (re)starts brings its shard's records to their owners

	stop := func(sctx context.Context) {
		// Hand off before leaving: once this node's shards are out of the
		// ring, one pass pushes each of their records to the owners the
		// ring names without them, so nothing depends on the others'
		// repair alone.
		if len(cfg.Memcached) > 0 {
			if err := mship.SetState(ring.StateLeaving); err != nil {
				log.Warn("announce leaving", "err", err)
			}
			cancel()
			<-repairDone
			hctx, hcancel := context.WithTimeout(sctx, handoffTimeout)
			rep.Pass(hctx)
			hcancel()
			log.Info("handed off records", "scanned", rep.Stats().Scanned, "copied", rep.Stats().Copied)
		}
		cancel()
		<-repairDone
		unsubscribe()
		if err := mship.Leave(5 * time.Second); err != nil {
			log.Warn("leave gossip", "err", err)
		}
		store.Close()
	}
	ready := func() error {
		if mship.Ring().Healthy() == 0 {
			return errors.New("no healthy memcached shard in the ring")
		}
		return nil
	}
	log.Info("joined the ring", "gossip", mship.LocalAddr(), "members", len(mship.Members()), "shards", mship.Ring().Len())
	return &backend{
		store:   store,
		status:  api.RingStatus{Members: mship, Store: store, Repairer: rep},
		ready:   ready,
		stop:    stop,
		metrics: statsCollector{store: store, rep: rep, mship: mship, shards: cfg.Memcached, timeout: cfg.MemcachedTimeout},
	}, nil
}

// openRemote connects to a remote node for --locator: the SIP front end
// runs against that cluster through the gRPC client.
func openRemote(cfg *config) (*backend, sipfront.Locator, error) {
	addr := strings.TrimPrefix(cfg.Locator, "grpc://")
	creds, err := cfg.Sec.locatorCreds()
	if err != nil {
		return nil, nil, usageError{err}
	}
	conn, err := grpc.NewClient(addr, creds)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("--locator: %w", err)}
	}
	be := &backend{stop: func(context.Context) { conn.Close() }}
	return be, api.NewClient(conn), nil
}

// handoffTimeout bounds the hand-off pass at SIGTERM.
const handoffTimeout = 60 * time.Second

// readKeyFile reads a base64 key (16, 24 or 32 bytes) from a file.
func readKeyFile(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("%s: not base64: %v", path, err)
	}
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	}
	return nil, fmt.Errorf("%s: key is %d bytes; want 16, 24 or 32", path, len(key))
}

// readKeyring reads a gossip keyring file: one base64 key (16, 24 or 32
// bytes) a line, blank lines and # comments ignored, the first key the
// primary (the one that encrypts).
func readKeyring(path string) ([][]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys [][]byte
	seen := make(map[string]int)
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: not base64: %v", path, i+1, err)
		}
		switch len(key) {
		case 16, 24, 32:
		default:
			return nil, fmt.Errorf("%s:%d: key is %d bytes; want 16, 24 or 32", path, i+1, len(key))
		}
		// A duplicate is harmless to memberlist but is usually a rotation
		// step gone wrong (the new key pasted twice, the old one lost).
		if prev, ok := seen[string(key)]; ok {
			return nil, fmt.Errorf("%s:%d: same key as line %d", path, i+1, prev)
		}
		seen[string(key)] = i + 1
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no key in it", path)
	}
	return keys, nil
}

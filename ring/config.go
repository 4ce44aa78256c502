package ring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// Config configures Start.
type Config struct {
	NodeID    string   // unique node name; required
	BindAddr  string   // gossip address, "127.0.0.1:7946" when empty; port 0 picks one (see LocalAddr)
	Advertise string   // address other nodes should use, when it differs from BindAddr (NAT, containers)
	Join      []string // seed gossip addresses; this node's own address is ignored

	// RequireJoin makes Start fail when Join is non-empty and no seed
	// answers. Off by default: nodes that list each other as seeds must be
	// able to start in any order, so a failed join is retried in the
	// background instead (see Membership).
	RequireJoin bool

	// Profile picks memberlist's timing: "local" (the default:
	// DefaultLocalConfig, failure detected in about a second or two),
	// "lan" (DefaultLANConfig, several seconds) or "wan".
	Profile string

	SecretKey []byte // optional gossip encryption key, 16, 24 or 32 bytes (AES)

	// Keys is a keyring, the alternative to SecretKey: Keys[0] encrypts,
	// every key decrypts. Rotating a cluster's key without downtime takes
	// a node restart at each step, each adding, promoting or dropping one
	// key, so that at every moment all nodes share a key they can read
	// (docs/security.md has the procedure).
	Keys [][]byte

	Meta Meta // initial metadata; NodeID and RestartGrace are taken from Config

	// RestartGrace is how long peers keep this node's shards in placement
	// after it left with LeaveForRestart (announced in Meta; see
	// StateRestarting). 0: they drop them at once, as for a crash.
	RestartGrace time.Duration

	// HealthCheck, when set, is called every HealthInterval for each shard
	// in Meta.Shards (and once before joining); a change of the result is
	// announced so every node learns it. ring stays free of memcached code:
	// the caller passes a func that asks memcached. epoch identifies the
	// running instance of the shard (0: unknown): a new epoch means the
	// shard restarted, perhaps empty, even if no check ever saw it down,
	// and it changes the ring so that every node repairs.
	HealthCheck    func(ctx context.Context, addr string) (epoch uint64, err error)
	HealthInterval time.Duration // default 1s; also the timeout of one check

	// ReconnectInterval is about how often this node tries to join one
	// member that failed without leaving (reconnect.go); default the
	// profile's push/pull interval (15 s local, 30 s lan, 60 s wan).
	ReconnectInterval time.Duration

	// tune, when set, adjusts memberlist's configuration last: tests
	// shorten timings with it that would otherwise make them slow.
	tune func(*memberlist.Config)

	// Logger receives memberlist's own log lines at debug level, and this
	// package's at their level. nil discards both.
	Logger *slog.Logger
}

const (
	defaultBindAddr       = "127.0.0.1:7946"
	defaultHealthInterval = time.Second
)

func (c *Config) memberlistConfig() (*memberlist.Config, error) {
	if c.NodeID == "" {
		return nil, errors.New("ring: Config.NodeID is required")
	}
	var mc *memberlist.Config
	switch c.Profile {
	case "", "local":
		mc = memberlist.DefaultLocalConfig()
	case "lan":
		mc = memberlist.DefaultLANConfig()
	case "wan":
		mc = memberlist.DefaultWANConfig()
	default:
		return nil, fmt.Errorf("ring: unknown Profile %q (want local, lan or wan)", c.Profile)
	}
	mc.Name = c.NodeID
	bind := c.BindAddr
	if bind == "" {
		bind = defaultBindAddr
	}
	host, port, err := splitHostPort(bind)
	if err != nil {
		return nil, fmt.Errorf("ring: BindAddr: %w", err)
	}
	mc.BindAddr, mc.BindPort = host, port
	// memberlist advertises BindPort; with port 0 it fills in the chosen one.
	mc.AdvertisePort = port
	if c.Advertise != "" {
		if mc.AdvertiseAddr, mc.AdvertisePort, err = splitHostPort(c.Advertise); err != nil {
			return nil, fmt.Errorf("ring: Advertise: %w", err)
		}
	}
	if len(c.SecretKey) > 0 && len(c.Keys) > 0 {
		return nil, errors.New("ring: SecretKey and Keys are exclusive")
	}
	if len(c.SecretKey) > 0 {
		if err := memberlist.ValidateKey(c.SecretKey); err != nil {
			return nil, fmt.Errorf("ring: SecretKey: %w", err)
		}
		mc.SecretKey = c.SecretKey
	}
	if len(c.Keys) > 0 {
		for i, k := range c.Keys {
			if err := memberlist.ValidateKey(k); err != nil {
				return nil, fmt.Errorf("ring: Keys[%d]: %w", i, err)
			}
		}
		if mc.Keyring, err = memberlist.NewKeyring(c.Keys, c.Keys[0]); err != nil {
			return nil, fmt.Errorf("ring: Keys: %w", err)
		}
	}
	// A node restarted under the same NodeID usually comes back on another
	// port (port 0, containers). Without this memberlist refuses the new
	// address as a name conflict until the dead entry is reaped.
	mc.DeadNodeReclaimTime = 5 * mc.ProbeInterval
	if c.tune != nil {
		c.tune(mc)
	}
	return mc, nil
}

func splitHostPort(hp string) (string, int, error) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", hp)
	}
	return host, port, nil
}

package node

import (
	"fmt"
	"log/slog"

	"github.com/locsvc/locsvc/sipfront"
)

// startSIP starts the SIP front end on loc, or returns nil when cfg.SIP is
// empty. peers (nil on a single node, or with --locator) names who keeps
// alive the phones of a node that is gone.
func startSIP(cfg *Config, loc sipfront.Locator, peers sipfront.Peers, log *slog.Logger) (*sipfront.Server, error) {
	if cfg.SIP == "" {
		return nil, nil
	}
	fc := sipfront.Config{
		Addr: cfg.SIP, Advertise: cfg.sipAdvertise(), Mode: cfg.SIPMode, Domains: cfg.Domains,
		Trusted: cfg.Trusted, AllowOpen: cfg.AllowOpen, AuthAll: cfg.SIPAuthAll, Logger: log.With("component", "sip"),
		MaxMessageSize: cfg.SIPMaxMessage, MaxTCPConns: cfg.SIPMaxConns, RegisterRate: cfg.RegisterRate, RegisterBurst: cfg.RegisterBurst,
		TLSAddr: cfg.SIPTLS, TLSConfig: cfg.SIPTLSConfig, RequestTimeout: cfg.SIPRequestTimeout, FlowTimer: cfg.FlowTimer,
		WSAddr: cfg.SIPWS, WSSAddr: cfg.SIPWSS, WSOrigins: cfg.WSOrigins,
		NATPing: cfg.natPing(), NodeID: cfg.NodeID, Peers: peers, Overload: cfg.overload(),
	}
	if cfg.Credentials != "" {
		creds, err := sipfront.LoadCredentials(cfg.Credentials)
		if err != nil {
			return nil, &ConfigError{fmt.Errorf("--credentials: %w", err)}
		}
		fc.Credentials = creds
	}
	for _, k := range []struct {
		flag, path string
		key        *[]byte
	}{{"--nonce-key", cfg.NonceKeyFile, &fc.NonceKey}, {"--flow-key", cfg.FlowKeyFile, &fc.FlowKey}} {
		if k.path == "" {
			continue
		}
		key, err := sipfront.LoadKey(k.path)
		if err != nil {
			return nil, &ConfigError{fmt.Errorf("%s: %w", k.flag, err)}
		}
		*k.key = key
	}
	srv, err := sipfront.New(loc, fc)
	if err != nil {
		return nil, &ConfigError{fmt.Errorf("--sip: %w", err)}
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("--sip: %w", err)
	}
	return srv, nil
}

package node

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
}

// Each bad setting is named by its flag, and every one is reported.
func TestValidateNamesFlags(t *testing.T) {
	for _, c := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.FlowTimer = 1500 * time.Millisecond }, "--flow-timer"},
		{func(c *Config) { c.FlowTimer = -time.Second }, "--flow-timer"},
		{func(c *Config) { c.SIPRequestTimeout = 0 }, "--sip-request-timeout"},
		{func(c *Config) { c.NATPing = 500 * time.Millisecond }, "--nat-ping: 0 (off) or at least 1s"},
		{func(c *Config) { c.NATPingMethod = "icmp" }, "--nat-ping-method"},
		{func(c *Config) { c.NATPingMisses = -1 }, "--nat-ping-misses"},
		{func(c *Config) { c.NATPing, c.NATPingMethod, c.NATPingMisses = time.Second, "crlf", 3 }, "--nat-ping-misses: needs the options method"},
		{func(c *Config) { c.NATPing, c.SIP = time.Second, "" }, "--nat-ping needs --sip"},
		{func(c *Config) { c.RegisterRate = -1 }, "--register-rate"},
		{func(c *Config) { c.RegisterBurst = -1 }, "--register-burst"},
		{func(c *Config) { c.SIPMaxMessage = 10 }, "--sip-max-message"},
		{func(c *Config) { c.GossipProfile = "fast" }, "--gossip-profile"},
		{func(c *Config) { c.MemcachedConns = 0 }, "--memcached-conns"},
		{func(c *Config) { c.Locator = "grpc://h:1"; c.Memcached = []string{"h:2"} }, "--locator"},
		{func(c *Config) { c.RestartGrace = -time.Second }, "--restart-grace"},
		{func(c *Config) { c.RestartGrace = 25 * time.Hour }, "--restart-grace"},
	} {
		cfg := DefaultConfig()
		c.set(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want an error naming %s, got %v", c.want, err)
		}
	}
	cfg := DefaultConfig()
	cfg.FlowTimer, cfg.Replicas = -1, 0
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--flow-timer") || !strings.Contains(err.Error(), "--replicas") {
		t.Errorf("both mistakes should be reported: %v", err)
	}
	cfg = DefaultConfig()
	cfg.FlowTimer = 0
	if err := cfg.Validate(); err != nil {
		t.Errorf("--flow-timer 0 (none): %v", err)
	}
}

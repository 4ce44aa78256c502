package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/locsvc/locsvc/locsvc/ringstore"
)

// shardProbe is the health check of the shards a node fronts:
// ringstore.Probe over the node's one dial, so that a shard is healthy
// exactly when the store can talk to it. A failure says which setting to
// fix when the error tells (shardHint), and is logged when the shard
// starts failing or fails differently: the check runs every second, and
// its errors carry ephemeral ports, so logging each would bury the one
// line that matters.
type shardProbe struct {
	dial       ringstore.DialFunc
	timeout    time.Duration
	tlsOn      bool // --memcached-tls-ca
	clientCert bool // --memcached-tls-cert
	log        *slog.Logger

	mu      sync.Mutex
	failing map[string]string // shard → the hint of the failure logged
	slow    map[string]bool   // shard → its last check timed out, after a success
}

func newShardProbe(dial ringstore.DialFunc, timeout time.Duration, tlsConf func() *tls.Config, log *slog.Logger) *shardProbe {
	p := &shardProbe{dial: dial, timeout: timeout, log: log, failing: make(map[string]string), slow: make(map[string]bool)}
	if tlsConf != nil {
		c := tlsConf()
		p.tlsOn, p.clientCert = true, c.GetClientCertificate != nil || len(c.Certificates) > 0
	}
	return p
}

// check is ring.Config.HealthCheck.
func (p *shardProbe) check(ctx context.Context, addr string) (uint64, error) {
	epoch, err := ringstore.Probe(ctx, p.dial, addr, p.timeout)
	if err != nil && ctx.Err() != nil {
		return 0, err // cut short by the ring: says nothing about the shard
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// One timeout of a shard that answered its last check is let pass
	// (healthy, epoch unknown): on a node short of CPU, as under a
	// registration avalanche, a probe's dial can time out though the
	// shard is fine, and taking the shard out would move its keys and
	// wake repair, more work at the worst moment. Two in a row, or any
	// other failure (refused, TLS), take it out at once.
	_, failing := p.failing[addr]
	if timedOut(err) && !failing && !p.slow[addr] {
		p.slow[addr] = true
		p.log.Debug("memcached shard probe timed out once; healthy until the next check says so", "shard", addr, "err", err)
		return 0, nil
	}
	delete(p.slow, addr)
	hint := ""
	if err != nil {
		if hint = shardHint(err, p.tlsOn, p.clientCert); hint != "" {
			err = fmt.Errorf("%w: %s", err, hint)
		}
	}
	logged, was := p.failing[addr]
	switch {
	case err != nil && (!was || logged != hint):
		p.failing[addr] = hint
		p.log.Warn("memcached shard unhealthy: this node cannot talk to it", "shard", addr, "err", err)
	case err == nil && was:
		delete(p.failing, addr)
		p.log.Info("memcached shard healthy again", "shard", addr)
	}
	return epoch, err
}

// timedOut reports a check that ran out of time (dial, handshake or
// answer), as against one the shard refused or failed.
func timedOut(err error) bool {
	var ne net.Error
	return err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout())
}

// shardHint names what to fix when a shard's error shows a TLS mismatch
// between this node (tlsOn: --memcached-tls-ca; clientCert:
// --memcached-tls-cert) and the shard; "" when it shows none.
func shardHint(err error, tlsOn, clientCert bool) string {
	var verify *tls.CertificateVerificationError
	var record tls.RecordHeaderError
	switch {
	case !tlsOn && errors.Is(err, ringstore.ErrNoAnswer):
		return "to talk TLS to it, set --memcached-tls-ca, --memcached-tls-cert and --memcached-tls-key"
	case !tlsOn:
		return ""
	case errors.As(err, &verify):
		return "the shard's certificate does not verify against --memcached-tls-ca, or does not name the address dialled (an IP address needs an IP SAN)"
	case errors.As(err, &record):
		return "the shard does not speak TLS: start memcached with -Z, or drop --memcached-tls-ca"
	case !refused(err):
		return ""
	case !clientCert:
		return "the shard refused the TLS connection: it requires a client certificate; set --memcached-tls-cert and --memcached-tls-key"
	}
	return "the shard refused the TLS connection: is --memcached-tls-cert signed by the CA the shard trusts (its ssl_ca_cert)?"
}

// refused reports a shard that ended the TLS connection: with an alert,
// which crypto/tls returns as a "remote error", or by closing it unanswered.
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error" || errors.Is(err, ringstore.ErrNoAnswer)
}

package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/locsvc/locsvc/api"
	"github.com/locsvc/locsvc/internal/apitoken"
)

// The API's protected mode, the counterpart of SIP's (sipfront): gRPC and
// HTTP/JSON register any contact for any user with no digest
// challenge, so a listener others can reach must ask for something only
// clients hold, unless the operator says otherwise.

// validateAPI refuses an API on an address that is not loopback with
// neither a token nor client certificates, and checks the token file.
func (c *Config) validateAPI() []error {
	var errs []error
	if c.APIToken != "" {
		if _, err := apitoken.Load(c.APIToken); err != nil {
			errs = append(errs, fmt.Errorf("--api-token: %w", err))
		}
	}
	if c.ProtectMetrics && c.APIToken == "" {
		errs = append(errs, errors.New("--protect-metrics needs --api-token: the token /metrics then asks for"))
	}
	if c.Locator != "" || c.APIToken != "" || c.clientCerts() || c.APIAllowOpen {
		return errs // a front end of a remote cluster serves no API
	}
	for _, l := range []struct{ flag, addr string }{{"--grpc", c.GRPC}, {"--http", c.HTTP}} {
		if host, _, err := net.SplitHostPort(l.addr); err == nil && !isLoopbackHost(host) {
			errs = append(errs, fmt.Errorf("%s %q is not loopback, and whoever reaches the API there could register any contact "+
				"for any user, bypassing SIP digest auth: require a token (--api-token FILE) or client certificates "+
				"(--tls-client-ca, with --tls-cert and --tls-key), or serve it unprotected on purpose (--api-allow-open)", l.flag, l.addr))
		}
	}
	return errs
}

// clientCerts reports whether gRPC and HTTP demand client certificates.
func (c *Config) clientCerts() bool {
	return c.ServerTLS != nil && c.ServerTLS.ClientAuth == tls.RequireAndVerifyClientCert
}

// openPaths are the HTTP paths served without the token.
func (c *Config) openPaths() []string {
	if c.ProtectMetrics {
		return api.OpenPaths
	}
	return append(append([]string(nil), api.OpenPaths...), "/metrics")
}

// warnPlainToken says when a token would cross a network in clear: the
// operator may have chosen so (a private network), but should know.
func (n *Node) warnPlainToken() {
	if n.tokens == nil || n.cfg.ServerTLS != nil || n.api == nil {
		return
	}
	for _, a := range []string{n.cfg.GRPC, n.cfg.HTTP} {
		if host, _, err := net.SplitHostPort(a); err == nil && !isLoopbackHost(host) {
			n.log.Warn("API tokens are accepted over plaintext on an address that is not loopback: whoever can read that network can read them; serve TLS (--tls-cert, --tls-key)",
				"grpc", n.cfg.GRPC, "http", n.cfg.HTTP)
			return
		}
	}
}

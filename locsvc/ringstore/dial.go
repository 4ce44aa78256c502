package ringstore

import (
	"context"
	"crypto/tls"
	"errors"
	"net"

	"github.com/locsvc/locsvc/internal/mcpipe"
)

// DialFunc opens a connection to a memcached shard. A node builds one
// (Dialer) and hands it to every path that talks to memcached: the store's
// pipelined clients, the health probe, the key listing of repair and the
// item counts. So whether the shards are reached over TLS, and with which
// certificates, is decided in one place. Its context bounds the dial,
// handshake included.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Dialer is plain TCP when tlsConfig is nil. Otherwise every connection is
// TLS with the configuration tlsConfig returns as it is opened, so that
// certificate files renewed since reach new connections (those open keep
// their session). The shard's certificate is verified against the address
// dialled (an IP address needs an IP SAN) unless the configuration names a
// ServerName.
func Dialer(tlsConfig func() *tls.Config) DialFunc {
	var plain net.Dialer
	if tlsConfig == nil {
		return plain.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := tls.Dialer{Config: tlsConfig()}
		return d.DialContext(ctx, network, addr)
	}
}

// ErrNoAnswer is a shard that closed the connection before it answered
// anything; a memcached serving TLS only does that to a plain client.
var ErrNoAnswer = mcpipe.ErrNoAnswer

// unanswered is why a new connection failed before any answer, given
// err, what its first write or read met. Over TLS it is the alert the
// shard sent before closing (the refusal of our client certificate) when
// there is one to read, which says more than the reset that often comes
// first; otherwise err, matching ErrNoAnswer when the shard closed the
// connection.
func unanswered(conn net.Conn, err error) error {
	tc, overTLS := conn.(*tls.Conn)
	if overTLS && !isAlert(err) {
		var b [1]byte
		if _, rerr := tc.Read(b[:]); isAlert(rerr) {
			return rerr
		}
	}
	return mcpipe.NoAnswer(err, overTLS)
}

// isAlert reports a TLS alert from the peer, which crypto/tls returns as
// a "remote error".
func isAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

// dialFor is dial, or plain TCP when it is nil.
func dialFor(dial DialFunc) DialFunc {
	if dial == nil {
		return Dialer(nil)
	}
	return dial
}

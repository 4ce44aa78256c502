package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/locsvc/locsvc/integration"
	"github.com/locsvc/locsvc/internal/mcpipe"
	"github.com/locsvc/locsvc/internal/testcerts"
	"github.com/locsvc/locsvc/locsvc/ringstore"
)

func TestShardHint(t *testing.T) {
	shard := func(err error) error { return fmt.Errorf("memcached 127.0.0.1:11211: %w", err) }
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	alert := &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}
	for _, tc := range []struct {
		name              string
		err               error
		tlsOn, clientCert bool
		want              string // "" means no hint
	}{
		{"plain to a TLS-only shard", shard(mcpipe.NoAnswer(reset, false)), false, false, "set --memcached-tls-ca, --memcached-tls-cert and --memcached-tls-key"},
		{"plain, shard down", shard(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), false, false, ""},
		{"plain, a TLS error cannot happen", shard(alert), false, false, ""},
		{"shard certificate unverified", shard(&tls.CertificateVerificationError{Err: errors.New("x509: unknown authority")}), true, true, "does not verify against --memcached-tls-ca"},
		{"TLS to a plain shard", shard(tls.RecordHeaderError{Msg: "tls: first record does not look like a TLS handshake"}), true, true, "start memcached with -Z, or drop --memcached-tls-ca"},
		{"no client certificate, alert", shard(alert), true, false, "requires a client certificate; set --memcached-tls-cert and --memcached-tls-key"},
		{"no client certificate, closed", shard(mcpipe.NoAnswer(reset, true)), true, false, "set --memcached-tls-cert and --memcached-tls-key"},
		{"client certificate refused", shard(alert), true, true, "is --memcached-tls-cert signed by the CA the shard trusts"},
		{"TLS, shard slow", shard(context.DeadlineExceeded), true, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := shardHint(tc.err, tc.tlsOn, tc.clientCert)
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Errorf("hint %q, want %q", got, tc.want)
			}
		})
	}
}

// syncBuffer is a log sink the probe's goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A node without the TLS settings probing a TLS-only shard fails with the
// settings to fix in the error, logged once however often it probes; the
// shard's return (here: restarted without TLS) is logged too.
func TestShardProbeLogsOncePerFailure(t *testing.T) {
	m := integration.StartMemcachedTLS(t, testcerts.Generate(t))
	var out syncBuffer
	p := newShardProbe(ringstore.Dialer(nil), time.Second, nil, slog.New(slog.NewTextHandler(&out, nil)))
	for range 3 {
		_, err := p.check(context.Background(), m.Addr)
		if err == nil || !strings.Contains(err.Error(), "set --memcached-tls-ca") || !strings.Contains(err.Error(), m.Addr) {
			t.Fatalf("probe of a TLS-only shard without TLS: %v", err)
		}
	}
	if n := strings.Count(out.String(), "memcached shard unhealthy"); n != 1 {
		t.Fatalf("%d warnings for one failure:\n%s", n, out.String())
	}
	m.TLS = nil
	m.Restart()
	if _, err := p.check(context.Background(), m.Addr); err != nil {
		t.Fatalf("probe of the shard restarted plain: %v", err)
	}
	if !strings.Contains(out.String(), "memcached shard healthy again") {
		t.Errorf("no word of the shard's return:\n%s", out.String())
	}
	// A check the ring cut short says nothing about the shard.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := out.String()
	if _, err := p.check(ctx, m.Addr); err == nil {
		t.Fatal("a cancelled check succeeded")
	}
	if out.String() != before {
		t.Errorf("a cancelled check was logged:\n%s", strings.TrimPrefix(out.String(), before))
	}
}

// One timeout of a shard that answered before is not enough to take it
// out (a node short of CPU); two in a row are, and a refusal is at once.
// A shard that answers again is healthy at once.
func TestShardProbeToleratesOneTimeout(t *testing.T) {
	m := integration.StartMemcached(t)
	// A shard that accepts and never answers: every check times out.
	mute, _ := integration.SilentServer(t)
	var out syncBuffer
	p := newShardProbe(ringstore.Dialer(nil), 200*time.Millisecond, nil, slog.New(slog.NewTextHandler(&out, nil)))
	ctx := context.Background()
	// Healthy first, as the mute shard's address is probed: its first
	// timeout passes, its second does not.
	if _, err := p.check(ctx, mute); err != nil {
		t.Fatalf("first timeout taken as a failure: %v", err)
	}
	if _, err := p.check(ctx, mute); err == nil {
		t.Fatal("second timeout in a row taken as healthy")
	}
	if _, err := p.check(ctx, mute); err == nil {
		t.Fatal("a failing shard's next timeout taken as healthy")
	}
	// A real shard: healthy; once gone (refused), failing at the first check.
	if _, err := p.check(ctx, m.Addr); err != nil {
		t.Fatal(err)
	}
	m.Kill()
	if _, err := p.check(ctx, m.Addr); err == nil {
		t.Fatal("a refused check taken as healthy")
	}
	m.Restart()
	if _, err := p.check(ctx, m.Addr); err != nil {
		t.Fatalf("the shard back: %v", err)
	}
	if n := strings.Count(out.String(), "memcached shard unhealthy"); n != 2 {
		t.Errorf("%d warnings, want 2 (the mute shard, the stopped one):\n%s", n, out.String())
	}
}

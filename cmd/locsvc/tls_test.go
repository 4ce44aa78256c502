package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/locsvc/locsvc/internal/testcerts"
)

// parseServe runs serve's flag parsing and validation on args.
func parseServe(t *testing.T, args ...string) (*config, error) {
	t.Helper()
	var cfg config
	fs, finish := serveFlags(&cfg)
	fs.SetOutput(new(strings.Builder))
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	return &cfg, finish()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func b64(n int, fill byte) string {
	return base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(fill), n)))
}

func TestSecurityFlagValidation(t *testing.T) {
	c := testcerts.Generate(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	notPEM := writeFile(t, "not.pem", "hello\n")
	key := writeFile(t, "gossip.key", b64(16, 'k')+"\n")
	keyring := writeFile(t, "keyring", "# rotation in progress\n"+b64(32, 'n')+"\n\n"+b64(16, 'k')+"\n")
	for _, tc := range []struct {
		name string
		args []string
		want string // "" means valid
	}{
		{"tls", []string{"--tls-cert", c.ServerCert, "--tls-key", c.ServerKey}, ""},
		{"mtls, sip tls", []string{"--tls-cert", c.ServerCert, "--tls-key", c.ServerKey, "--tls-client-ca", c.CAFile,
			"--sip-tls", "127.0.0.1:5061"}, ""},
		{"cert without key", []string{"--tls-cert", c.ServerCert}, "--tls-cert needs --tls-key"},
		{"key without cert", []string{"--tls-key", c.ServerKey}, "--tls-key needs --tls-cert"},
		{"client CA without cert", []string{"--tls-client-ca", c.CAFile}, "--tls-client-ca needs --tls-cert"},
		{"unreadable cert", []string{"--tls-cert", missing, "--tls-key", c.ServerKey}, "--tls-cert/--tls-key: open " + missing},
		{"key of another cert", []string{"--tls-cert", c.ServerCert, "--tls-key", c.ClientKey}, "--tls-cert/--tls-key: tls: private key does not match"},
		{"unreadable client CA", []string{"--tls-cert", c.ServerCert, "--tls-key", c.ServerKey, "--tls-client-ca", missing}, "--tls-client-ca: open"},
		{"client CA not PEM", []string{"--tls-cert", c.ServerCert, "--tls-key", c.ServerKey, "--tls-client-ca", notPEM}, "--tls-client-ca: " + notPEM + ": no PEM certificate"},
		{"sip tls without cert", []string{"--sip-tls", "127.0.0.1:5061"}, "--sip-tls needs --tls-cert"},
		{"sip tls without sip", []string{"--sip", "", "--sip-tls", "127.0.0.1:5061", "--tls-cert", c.ServerCert, "--tls-key", c.ServerKey}, "--sip-tls needs --sip"},
		{"sip tls bad address", []string{"--sip-tls", "5061", "--tls-cert", c.ServerCert, "--tls-key", c.ServerKey}, "--sip-tls: "},
		{"sip ws and wss", []string{"--sip-ws", "127.0.0.1:5080", "--sip-wss", "127.0.0.1:5081", "--ws-origins", "https://a.example, https://b.example",
			"--tls-cert", c.ServerCert, "--tls-key", c.ServerKey}, ""},
		{"sip wss without cert", []string{"--sip-wss", "127.0.0.1:5081"}, "--sip-wss needs --tls-cert"},
		{"sip ws without sip", []string{"--sip", "", "--sip-ws", "127.0.0.1:5080"}, "--sip-ws needs --sip"},
		{"sip ws bad address", []string{"--sip-ws", "5080"}, "--sip-ws: "},
		{"ws origins without ws", []string{"--ws-origins", "https://a.example"}, "--ws-origins needs --sip-ws or --sip-wss"},
		{"locator tls", []string{"--locator", "grpc://127.0.0.1:7070", "--locator-ca", c.CAFile, "--locator-cert", c.ClientCert, "--locator-key", c.ClientKey}, ""},
		{"locator ca without locator", []string{"--locator-ca", c.CAFile}, "--locator-ca, --locator-cert and --locator-key need --locator"},
		{"locator cert without key", []string{"--locator", "grpc://127.0.0.1:7070", "--locator-cert", c.ClientCert}, "--locator-cert needs --locator-key"},
		{"unreadable locator ca", []string{"--locator", "grpc://127.0.0.1:7070", "--locator-ca", missing}, "--locator-ca: open"},
		{"memcached tls", []string{"--memcached", "127.0.0.1:11211", "--memcached-tls-ca", c.CAFile,
			"--memcached-tls-cert", c.ClientCert, "--memcached-tls-key", c.ClientKey}, ""},
		{"memcached tls CA only, router", []string{"--join", "127.0.0.1:7946", "--memcached-tls-ca", c.CAFile}, ""},
		{"memcached cert without CA", []string{"--memcached", "127.0.0.1:11211", "--memcached-tls-cert", c.ClientCert,
			"--memcached-tls-key", c.ClientKey}, "--memcached-tls-cert and --memcached-tls-key need --memcached-tls-ca"},
		{"memcached cert without key", []string{"--memcached", "127.0.0.1:11211", "--memcached-tls-ca", c.CAFile,
			"--memcached-tls-cert", c.ClientCert}, "--memcached-tls-cert needs --memcached-tls-key"},
		{"memcached key without cert", []string{"--memcached", "127.0.0.1:11211", "--memcached-tls-ca", c.CAFile,
			"--memcached-tls-key", c.ClientKey}, "--memcached-tls-key needs --memcached-tls-cert"},
		{"memcached tls without shards", []string{"--memcached-tls-ca", c.CAFile}, "--memcached-tls-ca, --memcached-tls-cert and --memcached-tls-key need --memcached or --join"},
		{"memcached tls with locator", []string{"--locator", "grpc://127.0.0.1:7070", "--memcached-tls-ca", c.CAFile}, "need --memcached or --join"},
		{"unreadable memcached CA", []string{"--memcached", "127.0.0.1:11211", "--memcached-tls-ca", missing}, "--memcached-tls-ca: open " + missing},
		{"memcached CA not PEM", []string{"--memcached", "127.0.0.1:11211", "--memcached-tls-ca", notPEM}, "--memcached-tls-ca: " + notPEM + ": no PEM certificate"},
		{"memcached key of another cert", []string{"--memcached", "127.0.0.1:11211", "--memcached-tls-ca", c.CAFile,
			"--memcached-tls-cert", c.ClientCert, "--memcached-tls-key", c.ServerKey}, "--memcached-tls-cert/--memcached-tls-key: tls: private key does not match"},
		{"keyring", []string{"--gossip-keyring", keyring}, ""},
		{"both gossip flags", []string{"--gossip-key", key, "--gossip-keyring", keyring}, "--gossip-key and --gossip-keyring are exclusive"},
		{"unreadable keyring", []string{"--gossip-keyring", missing}, "--gossip-keyring: open"},
		{"keyring not base64", []string{"--gossip-keyring", writeFile(t, "kr", "# x\n!!!\n")}, ":2: not base64"},
		{"keyring key size", []string{"--gossip-keyring", writeFile(t, "kr", b64(20, 'a'))}, "key is 20 bytes; want 16, 24 or 32"},
		{"keyring empty", []string{"--gossip-keyring", writeFile(t, "kr", "# nothing\n\n")}, "no key in it"},
		{"keyring duplicate", []string{"--gossip-keyring", writeFile(t, "kr", b64(16, 'a')+"\n"+b64(16, 'a')+"\n")}, ":2: same key as line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseServe(t, tc.args...)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("want an error containing %q, got none", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestServerTLSConfig(t *testing.T) {
	c := testcerts.Generate(t)
	sec := security{CertFile: c.ServerCert, KeyFile: c.ServerKey}
	conf, _, err := sec.listenerTLS(quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if conf.MinVersion != tls.VersionTLS12 || conf.ClientAuth != tls.NoClientCert {
		t.Errorf("TLS only: MinVersion %x, ClientAuth %v", conf.MinVersion, conf.ClientAuth)
	}
	sec.ClientCAFile = c.CAFile
	conf, sc, err := sec.listenerTLS(quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if conf.ClientAuth != tls.RequireAndVerifyClientCert || conf.ClientCAs == nil {
		t.Errorf("mTLS: ClientAuth %v", conf.ClientAuth)
	}
	// SIP over TLS never demands a client certificate, even beside mTLS.
	if sc.ClientAuth != tls.NoClientCert {
		t.Errorf("SIP TLS: %v, ClientAuth %v", err, sc.ClientAuth)
	}
}

// TestCertReload: a renewed certificate is served after the check
// interval; a half-written renewal keeps the old one in service.
func TestCertReload(t *testing.T) {
	first, second := testcerts.Generate(t), testcerts.Generate(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	copyFile(t, first.ServerCert, certFile)
	copyFile(t, first.ServerKey, keyFile)
	r, err := newCertReloader(certFile, keyFile, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r.now = func() time.Time { return now }
	served := func() *x509.Certificate {
		t.Helper()
		c, err := r.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf
	}
	firstSerial := served().SerialNumber

	// Half a renewal: the new certificate, the old key. Still the old one.
	copyFile(t, second.ServerCert, certFile)
	touch(t, certFile, now.Add(time.Minute))
	now = now.Add(2 * certCheckInterval)
	if got := served().SerialNumber; got.Cmp(firstSerial) != 0 {
		t.Fatal("a certificate that does not match its key was put in service")
	}
	// The key follows: the new pair is served, but only once the check
	// interval has passed.
	copyFile(t, second.ServerKey, keyFile)
	touch(t, keyFile, now.Add(time.Minute))
	if got := served().SerialNumber; got.Cmp(firstSerial) != 0 {
		t.Fatal("files looked at again within the check interval")
	}
	now = now.Add(2 * certCheckInterval)
	if got := served().SerialNumber; got.Cmp(firstSerial) == 0 {
		t.Fatal("renewed certificate not picked up")
	}
}

// TestCAReload: a CA bundle replaced on disk is served after the check
// interval; one that does not load keeps the old one in service.
func TestCAReload(t *testing.T) {
	first, second := testcerts.Generate(t), testcerts.Generate(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	copyFile(t, first.CAFile, caFile)
	r, err := newCAReloader(caFile, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r.now = func() time.Time { return now }
	trusts := func(c *testcerts.Certs) bool {
		t.Helper()
		pair, err := tls.LoadX509KeyPair(c.ServerCert, c.ServerKey)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		_, err = leaf.Verify(x509.VerifyOptions{Roots: r.get(), DNSName: "127.0.0.1"})
		return err == nil
	}
	if !trusts(first) || trusts(second) {
		t.Fatal("the first CA bundle is not the one in service")
	}
	// A file that is not PEM: still the first CA.
	if err := os.WriteFile(caFile, []byte("half written\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	touch(t, caFile, now.Add(time.Minute))
	now = now.Add(2 * certCheckInterval)
	if !trusts(first) {
		t.Fatal("a CA bundle that does not load was put in service")
	}
	// The new bundle, looked at only once the interval has passed.
	copyFile(t, second.CAFile, caFile)
	touch(t, caFile, now.Add(2*time.Minute))
	if !trusts(first) {
		t.Fatal("file looked at again within the check interval")
	}
	now = now.Add(2 * certCheckInterval)
	if !trusts(second) || trusts(first) {
		t.Fatal("replaced CA bundle not picked up")
	}
}

// --memcached-tls-* become a configuration per connection with the CA as
// roots and the client certificate offered whatever CAs the shard names.
func TestMemcachedTLSConfig(t *testing.T) {
	c := testcerts.Generate(t)
	cfg, err := parseServe(t, "--memcached", "127.0.0.1:11211", "--memcached-tls-ca", c.CAFile,
		"--memcached-tls-cert", c.ClientCert, "--memcached-tls-key", c.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MemcachedTLS != nil {
		t.Fatal("TLS configuration built before apply")
	}
	if err := cfg.Sec.apply(cfg, quietLog()); err != nil {
		t.Fatal(err)
	}
	conf := cfg.MemcachedTLS()
	if conf.RootCAs == nil || conf.GetClientCertificate == nil || conf.MinVersion != tls.VersionTLS12 || conf.InsecureSkipVerify {
		t.Fatalf("memcached TLS configuration: %+v", conf)
	}
	if cert, err := conf.GetClientCertificate(&tls.CertificateRequestInfo{}); err != nil || len(cert.Certificate) == 0 {
		t.Fatalf("client certificate: %v, %v", cert, err)
	}
	// Without the flags, plain TCP.
	cfg, err = parseServe(t, "--memcached", "127.0.0.1:11211")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Sec.apply(cfg, quietLog()); err != nil || cfg.MemcachedTLS != nil {
		t.Fatalf("no flags: %v, TLS set: %v", err, cfg.MemcachedTLS != nil)
	}
}

func TestClientTLSErrors(t *testing.T) {
	c := testcerts.Generate(t)
	if conf, err := clientTLS("", "", "", "--"); conf != nil || err != nil {
		t.Errorf("no files: %v, %v; want plaintext", conf, err)
	}
	if _, err := clientTLS(c.CAFile, c.ClientCert, "", "--"); err == nil || !strings.Contains(err.Error(), "--cert needs --key") {
		t.Errorf("cert without key: %v", err)
	}
	if _, err := clientTLS(c.ServerCert+".missing", "", "", "--locator-"); err == nil || !strings.Contains(err.Error(), "--locator-ca: open") {
		t.Errorf("missing CA: %v", err)
	}
	conf, err := clientTLS(c.CAFile, c.ClientCert, c.ClientKey, "--")
	if err != nil || conf.RootCAs == nil || len(conf.Certificates) != 1 {
		t.Errorf("full client config: %v, %+v", err, conf)
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func touch(t *testing.T, path string, at time.Time) {
	t.Helper()
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

// --sip-wss gets the SIP TLS configuration even without --sip-tls, and
// --ws-origins is split as the other lists are.
func TestWebSocketFlags(t *testing.T) {
	c := testcerts.Generate(t)
	cfg, err := parseServe(t, "--sip-ws", "127.0.0.1:5080", "--sip-wss", "127.0.0.1:5081",
		"--ws-origins", " https://a.example ,https://b.example", "--tls-cert", c.ServerCert, "--tls-key", c.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SIPWS != "127.0.0.1:5080" || cfg.SIPWSS != "127.0.0.1:5081" ||
		!slices.Equal(cfg.WSOrigins, []string{"https://a.example", "https://b.example"}) {
		t.Fatalf("parsed %q %q %q", cfg.SIPWS, cfg.SIPWSS, cfg.WSOrigins)
	}
	if err := cfg.Sec.apply(cfg, quietLog()); err != nil {
		t.Fatal(err)
	}
	if cfg.SIPTLSConfig == nil || cfg.SIPTLSConfig.GetCertificate == nil {
		t.Fatal("no SIP TLS configuration for --sip-wss")
	}
}

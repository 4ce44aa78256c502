package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"
)

// security is the TLS part of `locsvc serve`'s
// configuration (docs/security.md); the gossip keys are the node's own
// settings (node.Config).
type security struct {
	CertFile     string // --tls-cert: server certificate chain (PEM) for gRPC, HTTP and SIP TLS
	KeyFile      string // --tls-key
	ClientCAFile string // --tls-client-ca: gRPC and HTTP then require client certificates it signed

	LocatorCA   string // --locator-ca: CA bundle that verifies the --locator node (turns TLS on)
	LocatorCert string // --locator-cert: client certificate for a --locator node that requires one
	LocatorKey  string // --locator-key

	// Towards the memcached shards (docs/security.md, "The shard tier").
	MemcachedCA   string // --memcached-tls-ca: CA bundle that verifies every shard (turns TLS on)
	MemcachedCert string // --memcached-tls-cert: client certificate the shards require
	MemcachedKey  string // --memcached-tls-key
}

func (s *security) register(fs *flag.FlagSet) {
	fs.StringVar(&s.CertFile, "tls-cert", "", "PEM certificate chain: gRPC and HTTP serve TLS only (needs --tls-key)")
	fs.StringVar(&s.KeyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&s.ClientCAFile, "tls-client-ca", "", "PEM CA bundle: gRPC and HTTP require client certificates it signed (mTLS; needs --tls-cert)")
	fs.StringVar(&s.LocatorCA, "locator-ca", "", "PEM CA bundle verifying the --locator node: talk to it over TLS")
	fs.StringVar(&s.LocatorCert, "locator-cert", "", "PEM client certificate presented to the --locator node (needs --locator-key)")
	fs.StringVar(&s.LocatorKey, "locator-key", "", "PEM private key of --locator-cert")
	fs.StringVar(&s.MemcachedCA, "memcached-tls-ca", "", "PEM CA bundle verifying the memcached shards' certificates: talk TLS to every shard (reloaded when the file changes)")
	fs.StringVar(&s.MemcachedCert, "memcached-tls-cert", "", "PEM client certificate presented to the memcached shards (needs --memcached-tls-key and --memcached-tls-ca; reloaded when the files change)")
	fs.StringVar(&s.MemcachedKey, "memcached-tls-key", "", "PEM private key of --memcached-tls-cert")
}

// validate loads every file named, so that a wrong path, a key that does
// not match its certificate or a file that is not PEM stops the node at
// once with the flag named, not at the first handshake.
func (s *security) validate(c *config) []error {
	var errs []error
	switch {
	case s.CertFile != "" && s.KeyFile == "":
		errs = append(errs, errors.New("--tls-cert needs --tls-key"))
	case s.CertFile == "" && s.KeyFile != "":
		errs = append(errs, errors.New("--tls-key needs --tls-cert"))
	case s.CertFile != "":
		if _, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile); err != nil {
			errs = append(errs, fmt.Errorf("--tls-cert/--tls-key: %v", err))
		}
	}
	if s.ClientCAFile != "" {
		if s.CertFile == "" {
			errs = append(errs, errors.New("--tls-client-ca needs --tls-cert and --tls-key: client certificates are asked for in a TLS handshake"))
		}
		if _, err := loadCAPool(s.ClientCAFile); err != nil {
			errs = append(errs, fmt.Errorf("--tls-client-ca: %v", err))
		}
	}
	if c.SIPTLS != "" && s.CertFile == "" {
		errs = append(errs, errors.New("--sip-tls needs --tls-cert and --tls-key"))
	}
	if c.SIPWSS != "" && s.CertFile == "" {
		errs = append(errs, errors.New("--sip-wss needs --tls-cert and --tls-key"))
	}
	if s.LocatorCA != "" || s.LocatorCert != "" || s.LocatorKey != "" {
		if c.Locator == "" {
			errs = append(errs, errors.New("--locator-ca, --locator-cert and --locator-key need --locator"))
		}
		if _, err := clientTLS(s.LocatorCA, s.LocatorCert, s.LocatorKey, "--locator-"); err != nil {
			errs = append(errs, err)
		}
	}
	return append(errs, s.validateMemcached(c)...)
}

// validateMemcached checks the TLS files towards the shards. TLS is on
// only with the CA, so that every shard's certificate is verified: a
// client certificate alone is refused rather than presented to shards
// nobody checked.
func (s *security) validateMemcached(c *config) []error {
	if s.MemcachedCA == "" && s.MemcachedCert == "" && s.MemcachedKey == "" {
		return nil
	}
	var errs []error
	if s.MemcachedCA == "" {
		errs = append(errs, errors.New("--memcached-tls-cert and --memcached-tls-key need --memcached-tls-ca: it turns TLS on towards the shards and verifies them"))
	}
	if len(c.Memcached) == 0 && len(c.Join) == 0 {
		errs = append(errs, errors.New("--memcached-tls-ca, --memcached-tls-cert and --memcached-tls-key need --memcached or --join: without them this node talks to no memcached"))
	}
	if _, err := clientTLS(s.MemcachedCA, s.MemcachedCert, s.MemcachedKey, "--memcached-tls-"); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// listenerTLS is the configuration of the gRPC and HTTP listeners
// (server) and of the SIP TLS and WSS ones (sip), both nil without
// --tls-cert. They share one certificate reloader, so a renewal is read
// once and every listener serves it together; only server demands client
// certificates, with --tls-client-ca.
func (s *security) listenerTLS(log *slog.Logger) (server, sip *tls.Config, err error) {
	if s.CertFile == "" {
		return nil, nil, nil
	}
	if sip, err = s.sipTLS(log); err != nil {
		return nil, nil, err
	}
	server = sip.Clone()
	if s.ClientCAFile != "" {
		pool, err := loadCAPool(s.ClientCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--tls-client-ca: %w", err)
		}
		server.ClientCAs = pool
		server.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return server, sip, nil
}

// sipTLS is the SIP TLS listener's configuration: the same certificate,
// but never a client certificate demand, since phones authenticate by
// digest and rarely carry certificates.
func (s *security) sipTLS(log *slog.Logger) (*tls.Config, error) {
	r, err := newCertReloader(s.CertFile, s.KeyFile, log)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}, nil
}

// apply puts the TLS configurations the files describe into the node's
// Config: the gRPC and HTTP listeners', the SIP TLS and WSS listeners', and the
// client side towards --locator and towards the memcached shards.
func (s *security) apply(c *config, log *slog.Logger) error {
	server, sip, err := s.listenerTLS(log)
	if err != nil {
		return err
	}
	c.ServerTLS = server
	if c.SIPTLS != "" || c.SIPWSS != "" {
		c.SIPTLSConfig = sip
	}
	if c.LocatorTLS, err = clientTLS(s.LocatorCA, s.LocatorCert, s.LocatorKey, "--locator-"); err != nil {
		return err
	}
	c.MemcachedTLS, err = s.memcachedTLS(log)
	return err
}

// memcachedTLS is the client side towards the memcached shards, nil
// without --memcached-tls-ca. The node asks it for a configuration at each
// new shard connection; the CA bundle and the client certificate behind it
// are re-read when their files change, so a renewal reaches the
// connections opened after it without a restart.
func (s *security) memcachedTLS(log *slog.Logger) (func() *tls.Config, error) {
	if s.MemcachedCA == "" {
		return nil, nil
	}
	roots, err := newCAReloader(s.MemcachedCA, log)
	if err != nil {
		return nil, fmt.Errorf("--memcached-tls-ca: %w", err)
	}
	var cert *certReloader
	if s.MemcachedCert != "" {
		if cert, err = newCertReloader(s.MemcachedCert, s.MemcachedKey, log); err != nil {
			return nil, fmt.Errorf("--memcached-tls-cert/--memcached-tls-key: %w", err)
		}
	}
	return func() *tls.Config {
		conf := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots.get()}
		if cert != nil {
			conf.GetClientCertificate = cert.GetClientCertificate
		}
		return conf
	}, nil
}

// clientTLS is the client side: nil (plaintext) when no file is named;
// TLS verifying the server against caFile (the system roots when only a
// client certificate is given), presenting certFile when set. prefix
// names the flags in errors ("--" or "--locator-").
func clientTLS(caFile, certFile, keyFile, prefix string) (*tls.Config, error) {
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	var errs []error
	if caFile != "" {
		pool, err := loadCAPool(caFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("%sca: %v", prefix, err))
		}
		conf.RootCAs = pool
	}
	switch {
	case certFile != "" && keyFile == "":
		errs = append(errs, fmt.Errorf("%scert needs %skey", prefix, prefix))
	case certFile == "" && keyFile != "":
		errs = append(errs, fmt.Errorf("%skey needs %scert", prefix, prefix))
	case certFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("%scert/%skey: %v", prefix, prefix, err))
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return conf, nil
}

func loadCAPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}

// certCheckInterval bounds how often a handshake looks at the files'
// modification times: a stat pair per handshake would be wasted work
// under a reconnect storm.
const certCheckInterval = time.Second

// watched is what load makes of some files, made again when one of them
// changes, so that a renewal (cert-manager, certbot) is picked up without
// a restart. The files are looked at by whoever wants the value, at most
// once per interval. Files that do not load (a renewal half written: new
// certificate, old key) keep the previous value in service and are tried
// again at the next look.
type watched[T any] struct {
	what  string // names it in the log
	files []string
	load  func() (T, error)
	log   *slog.Logger

	mu       sync.Mutex
	cur      T
	mods     []time.Time
	checked  time.Time
	lastErr  string
	now      func() time.Time
	interval time.Duration
}

func newWatched[T any](what string, log *slog.Logger, load func() (T, error), files ...string) (*watched[T], error) {
	w := &watched[T]{what: what, files: files, load: load, log: log, now: time.Now, interval: certCheckInterval}
	mods, err := w.modTimes()
	if err != nil {
		return nil, err
	}
	cur, err := load()
	if err != nil {
		return nil, err
	}
	w.cur, w.mods, w.checked = cur, mods, w.now()
	return w, nil
}

func (w *watched[T]) modTimes() ([]time.Time, error) {
	mods := make([]time.Time, len(w.files))
	for i, f := range w.files {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		mods[i] = fi.ModTime()
	}
	return mods, nil
}

// get is the value, made again first if the interval has passed since
// the last look and a file has changed since.
func (w *watched[T]) get() T {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now := w.now(); now.Sub(w.checked) >= w.interval {
		w.checked = now
		w.reloadLocked()
	}
	return w.cur
}

func (w *watched[T]) reloadLocked() {
	mods, err := w.modTimes()
	if err == nil && slices.EqualFunc(mods, w.mods, time.Time.Equal) {
		return
	}
	var cur T
	if err == nil {
		cur, err = w.load()
	}
	if err != nil {
		// Logged once per distinct error: the look happens every second.
		if msg := err.Error(); msg != w.lastErr {
			w.lastErr = msg
			w.log.Warn(w.what+" changed but does not load; still using the previous one", "files", w.files, "err", err)
		}
		return
	}
	w.cur, w.mods, w.lastErr = cur, mods, ""
	w.log.Info(w.what+" reloaded", "files", w.files)
}

// certReloader serves a certificate pair, re-read when either file
// changes: for the listeners (GetCertificate) and towards the memcached
// shards (GetClientCertificate).
type certReloader struct{ *watched[*tls.Certificate] }

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	w, err := newWatched("TLS certificate", log, func() (*tls.Certificate, error) {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		return &cert, err
	}, certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &certReloader{w}, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.get(), nil
}

// GetClientCertificate is tls.Config.GetClientCertificate.
func (r *certReloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return r.get(), nil
}

// newCAReloader serves a CA bundle as a pool, re-read when the file
// changes.
func newCAReloader(caFile string, log *slog.Logger) (*watched[*x509.CertPool], error) {
	return newWatched("TLS CA bundle", log, func() (*x509.CertPool, error) { return loadCAPool(caFile) }, caFile)
}

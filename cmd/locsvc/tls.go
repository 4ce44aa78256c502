package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
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
}

func (s *security) register(fs *flag.FlagSet) {
	fs.StringVar(&s.CertFile, "tls-cert", "", "PEM certificate chain: gRPC and HTTP serve TLS only (needs --tls-key)")
	fs.StringVar(&s.KeyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&s.ClientCAFile, "tls-client-ca", "", "PEM CA bundle: gRPC and HTTP require client certificates it signed (mTLS; needs --tls-cert)")
	fs.StringVar(&s.LocatorCA, "locator-ca", "", "PEM CA bundle verifying the --locator node: talk to it over TLS")
	fs.StringVar(&s.LocatorCert, "locator-cert", "", "PEM client certificate presented to the --locator node (needs --locator-key)")
	fs.StringVar(&s.LocatorKey, "locator-key", "", "PEM private key of --locator-cert")
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
// client side towards --locator.
func (s *security) apply(c *config, log *slog.Logger) error {
	server, sip, err := s.listenerTLS(log)
	if err != nil {
		return err
	}
	c.ServerTLS = server
	if c.SIPTLS != "" || c.SIPWSS != "" {
		c.SIPTLSConfig = sip
	}
	c.LocatorTLS, err = clientTLS(s.LocatorCA, s.LocatorCert, s.LocatorKey, "--locator-")
	return err
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

// certReloader serves a certificate pair and re-reads it when either
// file changes, so that a renewed certificate (cert-manager, certbot) is
// picked up without a restart. A pair that does not load (a renewal half
// written: new certificate, old key) keeps the previous one in service
// and is tried again at the next check.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu              sync.Mutex
	cert            *tls.Certificate
	certMod, keyMod time.Time
	checked         time.Time
	lastErr         string
	now             func() time.Time
	interval        time.Duration
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log, now: time.Now, interval: certCheckInterval}
	certMod, keyMod, err := r.modTimes()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	r.cert, r.certMod, r.keyMod, r.checked = &cert, certMod, keyMod, r.now()
	return r, nil
}

func (r *certReloader) modTimes() (certMod, keyMod time.Time, err error) {
	ci, err := os.Stat(r.certFile)
	if err != nil {
		return
	}
	ki, err := os.Stat(r.keyFile)
	if err != nil {
		return
	}
	return ci.ModTime(), ki.ModTime(), nil
}

// GetCertificate is tls.Config.GetCertificate.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= r.interval {
		r.checked = now
		r.reloadLocked()
	}
	return r.cert, nil
}

func (r *certReloader) reloadLocked() {
	certMod, keyMod, err := r.modTimes()
	if err == nil && certMod.Equal(r.certMod) && keyMod.Equal(r.keyMod) {
		return
	}
	var cert tls.Certificate
	if err == nil {
		cert, err = tls.LoadX509KeyPair(r.certFile, r.keyFile)
	}
	if err != nil {
		// Logged once per distinct error: the check runs every second.
		if msg := err.Error(); msg != r.lastErr {
			r.lastErr = msg
			r.log.Warn("TLS certificate changed but does not load; still serving the previous one",
				"cert", r.certFile, "key", r.keyFile, "err", err)
		}
		return
	}
	r.cert, r.certMod, r.keyMod, r.lastErr = &cert, certMod, keyMod, ""
	r.log.Info("TLS certificate reloaded", "cert", r.certFile)
}

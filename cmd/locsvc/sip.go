package main

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/locsvc/locsvc/sipfront"
)

// startSIP starts the SIP front end on loc, or returns nil when --sip is
// empty.
func startSIP(cfg *config, loc sipfront.Locator, log *slog.Logger) (*sipfront.Server, error) {
	if cfg.SIP == "" {
		return nil, nil
	}
	fc := sipfront.Config{
		Addr: cfg.SIP, Advertise: cfg.SIPAdvertise, Mode: cfg.SIPMode, Domains: cfg.Domains,
		Trusted: cfg.Trusted, AllowOpen: cfg.AllowOpen, AuthAll: cfg.SIPAuthAll, Logger: log.With("component", "sip"),
		MaxMessageSize: cfg.SIPMaxMessage, RegisterRate: cfg.RegisterRate, RegisterBurst: cfg.RegisterBurst,
	}
	if cfg.Sec.SIPTLS != "" {
		conf, err := cfg.Sec.sipTLS(log)
		if err != nil {
			return nil, usageError{err}
		}
		fc.TLSAddr, fc.TLSConfig = cfg.Sec.SIPTLS, conf
	}
	if cfg.Credentials != "" {
		creds, err := sipfront.LoadCredentials(cfg.Credentials)
		if err != nil {
			return nil, usageError{fmt.Errorf("--credentials: %w", err)}
		}
		fc.Credentials = creds
	}
	if cfg.NonceKeyFile != "" {
		key, err := sipfront.LoadNonceKey(cfg.NonceKeyFile)
		if err != nil {
			return nil, usageError{fmt.Errorf("--nonce-key: %w", err)}
		}
		fc.NonceKey = key
	}
	srv, err := sipfront.New(loc, fc)
	if err != nil {
		return nil, usageError{fmt.Errorf("--sip: %w", err)}
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("--sip: %w", err)
	}
	return srv, nil
}

// passwdCmd prints credentials-file lines (MD5 and SHA-256 HA1) for a user,
// reading the password from standard input, so no password ever lands in
// the shell history or the process list.
func passwdCmd(args []string) error {
	if len(args) != 2 {
		return usageError{errors.New("passwd: need USER REALM (the password is read from standard input)")}
	}
	user, realm := args[0], args[1]
	if strings.ContainsAny(user+realm, ":\n") || user == "" || realm == "" {
		return usageError{errors.New("passwd: USER and REALM must be non-empty and contain no ':'")}
	}
	fmt.Fprintf(os.Stderr, "password for %s@%s: ", user, realm)
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return fmt.Errorf("passwd: reading the password: %w", err)
	}
	fmt.Fprintln(os.Stderr)
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		return usageError{errors.New("passwd: empty password")}
	}
	for _, alg := range []sipfront.Algorithm{sipfront.SHA256, sipfront.MD5} {
		l, err := sipfront.CredentialLine(user, realm, password, alg)
		if err != nil {
			return err
		}
		fmt.Println(l)
	}
	return nil
}

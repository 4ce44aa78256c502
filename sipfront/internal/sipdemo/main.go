// Command sipdemo runs the SIP front end on an in-process location service
// over the embedded store, for integration tests that need a real process
// before cmd/locsvc wires the front end in. Besides SIP it serves, on
// --http, GET /bindings?aor=AOR (the AoR's current bindings as JSON),
// GET /stats and GET /readyz.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/sipfront"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sipdemo:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		sipAddr     = flag.String("sip", "127.0.0.1:5060", "SIP listen address (UDP and TCP)")
		httpAddr    = flag.String("http", "127.0.0.1:8080", "HTTP address for /bindings, /stats, /readyz")
		mode        = flag.String("mode", "redirect", "registrar or redirect")
		domains     = flag.String("domain", "localhost", "comma-separated served domains; the first is the realm")
		trusted     = flag.String("trusted", "", "comma-separated CIDRs that skip auth")
		credentials = flag.String("credentials", "", "credentials file (user:realm:HA1 lines)")
		allowOpen   = flag.Bool("allow-open", false, "serve without auth on a non-loopback address")
		authAll     = flag.Bool("auth-all", false, "authenticate redirected requests too")
		minExpires  = flag.Duration("min-expires", 60*time.Second, "shortest registration granted")
		maxContacts = flag.Int("max-contacts", 16, "contacts per AoR")
		nonceLife   = flag.Duration("nonce-lifetime", 5*time.Minute, "digest nonce lifetime")
		nodeID      = flag.String("node-id", "demo", "node name stored in bindings")
	)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))

	lim := locsvc.DefaultLimits()
	lim.MinExpires, lim.MaxContacts = *minExpires, *maxContacts
	store := locsvc.NewMemStore(nil, 0)
	defer store.Close()
	svc, err := locsvc.NewService(store, lim, *nodeID)
	if err != nil {
		return err
	}
	cfg := sipfront.Config{
		Addr: *sipAddr, Mode: *mode, Domains: split(*domains), AllowOpen: *allowOpen, AuthAll: *authAll,
		NonceLifetime: *nonceLife, Logger: log,
	}
	for _, c := range split(*trusted) {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return fmt.Errorf("-trusted: %v", err)
		}
		cfg.Trusted = append(cfg.Trusted, p)
	}
	if *credentials != "" {
		creds, err := sipfront.LoadCredentials(*credentials)
		if err != nil {
			return err
		}
		cfg.Credentials = creds
	}
	srv, err := sipfront.New(svc, cfg)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, srv.Stats()) })
	mux.HandleFunc("GET /bindings", func(w http.ResponseWriter, r *http.Request) {
		res, err := svc.Lookup(r.Context(), r.URL.Query().Get("aor"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out := []binding{}
		for _, b := range res.Bindings {
			out = append(out, binding{
				URI: b.URI, Expires: int64(b.Expires.Sub(res.Now) / time.Second), Q: float64(b.Q) / 1000,
				CallID: b.CallID, CSeq: b.CSeq, Path: b.Path, Received: b.Received, Transport: b.Transport,
				Instance: b.Instance, RegID: b.RegID, UserAgent: b.UserAgent, Node: b.Node,
			})
		}
		writeJSON(w, out)
	})
	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("sipdemo ready", "sip", srv.Addr(), "http", ln.Addr().String())

	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sigc:
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs.Shutdown(ctx)
	log.Info("sipdemo stopped", "stats", fmt.Sprintf("%+v", srv.Stats()))
	return nil
}

// binding is what /bindings reports per binding.
type binding struct {
	URI       string   `json:"uri"`
	Expires   int64    `json:"expires"` // seconds left
	Q         float64  `json:"q"`
	CallID    string   `json:"call_id"`
	CSeq      uint32   `json:"cseq"`
	Path      []string `json:"path"`
	Received  string   `json:"received"`
	Transport string   `json:"transport"`
	Instance  string   `json:"instance,omitempty"`
	RegID     uint32   `json:"reg_id,omitempty"`
	UserAgent string   `json:"user_agent,omitempty"`
	Node      string   `json:"node"`
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

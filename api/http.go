package api

import (
	"encoding/json"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/api/statuspage"
)

// HTTP serves the JSON API (httpjson.go), health and readiness.
//
//	GET /healthz    200 while the process runs (liveness)
//	GET /readyz     200 when the node can serve, 503 with the reason otherwise
//	GET /status     HTML status page drawing the ring (package statuspage); / redirects there
type HTTP struct {
	srv      *Server
	ready    func() error
	draining atomic.Bool
}

// NewHTTP builds the HTTP handler. ready reports whether the node can
// serve requests now (nil: always once started). srv may be nil: then only
// health and readiness are served.
func NewHTTP(srv *Server, ready func() error) *HTTP {
	return &HTTP{srv: srv, ready: ready}
}

// Drain makes /readyz fail so that load balancers stop sending traffic
// before the servers close.
func (h *HTTP) Drain() { h.draining.Store(true) }

// Handler returns the routes.
func (h *HTTP) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", h.readyz)
	if h.srv == nil {
		return mux // a SIP front end for a remote cluster serves no API
	}
	mux.HandleFunc("GET /v1/status", h.status)
	mux.HandleFunc("POST /v1/register", h.register)
	mux.HandleFunc("POST /v1/unbind", h.unbind)
	mux.HandleFunc("POST /v1/drain", h.drain)
	mux.HandleFunc("GET /v1/lookup", h.lookup)
	mux.HandleFunc("POST /v1/lookup", h.lookup)
	mux.HandleFunc("GET /v1/dump", h.dump)
	mux.HandleFunc("POST /v1/remove", h.remove)
	mux.HandleFunc("GET /v1/counts", h.counts)
	mux.HandleFunc("GET /status", h.statusHTML)
	mux.Handle("GET /{$}", http.RedirectHandler("/status", http.StatusFound))
	return mux
}

func (h *HTTP) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if h.draining.Load() {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	if h.ready != nil {
		if err := h.ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (h *HTTP) status(w http.ResponseWriter, r *http.Request) {
	st, err := h.srv.Status(r.Context(), &locsvcv1.StatusRequest{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func writeJSONValue(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// statusHTML serves GET /status.
func (h *HTTP) statusHTML(w http.ResponseWriter, r *http.Request) {
	st, err := h.srv.Status(r.Context(), &locsvcv1.StatusRequest{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	page, err := statuspage.Render(st, time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// Node IDs and addresses come from gossip, so from any member: even if
	// escaping failed somewhere, nothing on this page may run.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(page)
}

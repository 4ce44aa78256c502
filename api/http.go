package api

import (
	"net/http"
	"sync/atomic"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/locsvc/locsvc/api/locsvcv1"
)

// HTTP serves health, readiness and status over HTTP.
//
//	GET /healthz    200 while the process runs (liveness)
//	GET /readyz     200 when the node can serve, 503 with the reason otherwise
//	GET /v1/status  the ClusterService.Status answer as JSON
type HTTP struct {
	srv      *Server
	ready    func() error
	draining atomic.Bool
}

// NewHTTP builds the HTTP handler. ready reports whether the node can
// serve requests now (nil: always once started).
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
	mux.HandleFunc("GET /v1/status", h.status)
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
	body, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(st)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(body, '\n'))
}

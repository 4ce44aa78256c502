package api

import (
	"context"
	"fmt"
	"mime"
	"net/http"

	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/locsvc/locsvc/api/locsvcv1"
)

// DrainFunc takes the node out of the cluster for good
// (AdminService.Drain): it hands the records of its shards off, reports
// what that did, and has the process end. The node provides it.
type DrainFunc func(ctx context.Context) (*locsvcv1.DrainResponse, error)

// SetDrain enables Drain. Without it (the embedded store, whose records
// exist nowhere else) Drain answers FAILED_PRECONDITION. Call it before
// serving.
func (s *Server) SetDrain(fn DrainFunc) { s.drainer = fn }

// Drain implements ClusterService.
func (s *Server) Drain(ctx context.Context, in *locsvcv1.DrainRequest) (*locsvcv1.DrainResponse, error) {
	if err := s.checkDrain(in); err != nil {
		return nil, err
	}
	out, err := s.drainer(ctx)
	switch {
	case err == nil:
		return out, nil
	case ctx.Err() != nil:
		return nil, status.FromContextError(err).Err()
	}
	return nil, status.Error(codes.FailedPrecondition, err.Error())
}

// checkDrain refuses a Drain that names another node, or a node with
// nothing to hand its records to. Draining is not undone, so a mistyped
// address must not drain the node that happens to answer there.
func (s *Server) checkDrain(in *locsvcv1.DrainRequest) error {
	switch id := in.GetNodeId(); {
	case id == "":
		return status.Error(codes.InvalidArgument, "node_id: name the node to drain (this is "+s.info.NodeID+")")
	case id != s.info.NodeID:
		return status.Error(codes.InvalidArgument, fmt.Sprintf("node_id: this is node %s, not %s: nothing done", s.info.NodeID, id))
	case s.drainer == nil:
		return status.Error(codes.FailedPrecondition, "this node serves the embedded store: its records exist nowhere else, so there is nothing to hand them to")
	}
	return nil
}

// drain serves POST /v1/drain with a DrainRequest. Its body must be JSON
// (Content-Type application/json): a web page can send a form or plain
// text to any address without asking, but a JSON post to another origin
// needs a CORS preflight that the node never grants, so no page an
// operator visits can drain a node through their browser.
func (h *HTTP) drain(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeErrorBody(w, http.StatusUnsupportedMediaType, "INVALID_ARGUMENT", "Content-Type: want application/json", nil)
		return
	}
	var in locsvcv1.DrainRequest
	if !readJSON(w, r, &in) {
		return
	}
	out, err := h.srv.Drain(r.Context(), &in)
	if err != nil {
		st := status.Convert(err)
		code := http.StatusBadRequest
		switch st.Code() {
		case codes.FailedPrecondition:
			code = http.StatusConflict
		case codes.DeadlineExceeded, codes.Canceled:
			code = http.StatusGatewayTimeout
		}
		writeErrorBody(w, code, rpccode.Code(st.Code()).String(), st.Message(), nil)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

package api

import (
	"errors"
	"io"
	"net/http"

	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/locsvc"
)

// The HTTP/JSON API maps the same calls as gRPC, for proxies that speak
// HTTP (Kamailio http_client + jansson, OpenSIPS rest_client + json).
// Bodies are the protobuf messages in their canonical JSON form (protojson:
// either lowerCamel or snake_case field names are accepted; 64-bit
// integers are rendered as strings).
//
//	POST /v1/register           RegisterRequest  -> RegisterResponse
//	GET  /v1/lookup?aor=AOR     (or POST a LookupRequest) -> LookupResponse
//	POST /v1/unbind             UnbindRequest    -> UnbindResponse
//	GET  /v1/status             StatusResponse
//	POST /v1/drain              DrainRequest     -> DrainResponse (drain.go)
//
// and for operators (AdminService, httpadmin.go):
//
//	GET  /v1/dump[?rate=N]      DumpResponse per line (NDJSON), streamed
//	POST /v1/remove             RemoveRequest    -> RemoveResponse
//	GET  /v1/counts[?rate=N]    CountsResponse
//
// As protojson does for every field, answers leave out zero values: an
// UnbindResponse that removed nothing has no "removed".
//
// A refused call answers with an HTTP status and a JSON error body carrying
// the SIP answer to send, so a proxy script can relay it unchanged:
//
//	{"error": {"code": "OUT_OF_RANGE", "message": "...", "sip_code": 423,
//	           "sip_reason": "Interval Too Brief", "min_expires": 60,
//	           "field": "contacts[0].expires"}}
//
// HTTP statuses: 400 malformed JSON or field (and too-brief expiry), 403 too
// many contacts, 409 out-of-order CSeq, 503 no replica reachable, 413 body
// over 64 KiB, 405 wrong method. Nothing is stored on any error.

// maxBody bounds request bodies: a REGISTER with the maximum contacts and
// Path entries is far below it.
const maxBody = 64 << 10

var unmarshal = protojson.UnmarshalOptions{}
var marshal = protojson.MarshalOptions{UseProtoNames: true}

func (h *HTTP) register(w http.ResponseWriter, r *http.Request) {
	var in locsvcv1.RegisterRequest
	if !readJSON(w, r, &in) {
		return
	}
	res, err := h.srv.svc.Register(r.Context(), RequestFromProto(&in))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, &locsvcv1.RegisterResponse{Aor: res.AoR, Bindings: BindingsToProto(res.Bindings, res.Now)})
}

func (h *HTTP) lookup(w http.ResponseWriter, r *http.Request) {
	var in locsvcv1.LookupRequest
	if r.Method == http.MethodPost {
		if !readJSON(w, r, &in) {
			return
		}
	} else {
		in.Aor = r.URL.Query().Get("aor")
	}
	res, err := h.srv.svc.Lookup(r.Context(), in.GetAor())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, &locsvcv1.LookupResponse{Aor: res.AoR, Bindings: BindingsToProto(res.Bindings, res.Now), Known: res.Known})
}

func (h *HTTP) unbind(w http.ResponseWriter, r *http.Request) {
	var in locsvcv1.UnbindRequest
	if !readJSON(w, r, &in) {
		return
	}
	out, err := h.srv.unbind(r.Context(), &in)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func readJSON(w http.ResponseWriter, r *http.Request, into proto.Message) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeErrorBody(w, http.StatusRequestEntityTooLarge, "INVALID_ARGUMENT", "request body over 64 KiB", nil)
			return false
		}
		writeErrorBody(w, http.StatusBadRequest, "INVALID_ARGUMENT", "reading body: "+err.Error(), nil)
		return false
	}
	if err := unmarshal.Unmarshal(body, into); err != nil {
		writeErrorBody(w, http.StatusBadRequest, "INVALID_ARGUMENT", "malformed JSON: "+err.Error(),
			&locsvcv1.SipError{Code: 400, Reason: "Bad Request"})
		return false
	}
	return true
}

func writeError(w http.ResponseWriter, err error) {
	status, body := errorOf(err)
	writeJSONValue(w, status, map[string]errBody{"error": body})
}

// errorOf is the HTTP status and error document that answer err.
func errorOf(err error) (int, errBody) {
	e, ok := locsvc.AsError(err)
	if !ok {
		return http.StatusInternalServerError, newErrBody("INTERNAL", err.Error(),
			&locsvcv1.SipError{Code: 500, Reason: "Server Internal Error"})
	}
	return httpStatusOf(e.Kind), newErrBody(rpccode.Code(codeOf(e.Kind)).String(), e.Error(), &locsvcv1.SipError{
		Code: uint32(e.SIPCode()), Reason: e.SIPReason(), MinExpires: uint32(e.MinExpires), Field: e.Field, Limit: e.Limit,
	})
}

// errBody is the JSON error document. Its field names are part of the
// API (proxy scripts read them), hence written out here.
type errBody struct {
	Code       string `json:"code"`
	Message    string `json:"message"`
	SIPCode    uint32 `json:"sip_code,omitempty"`
	SIPReason  string `json:"sip_reason,omitempty"`
	MinExpires uint32 `json:"min_expires,omitempty"`
	Field      string `json:"field,omitempty"`
	Limit      string `json:"limit,omitempty"`
}

func newErrBody(code, msg string, sip *locsvcv1.SipError) errBody {
	body := errBody{Code: code, Message: msg}
	if sip != nil {
		body.SIPCode, body.SIPReason, body.MinExpires, body.Field, body.Limit = sip.Code, sip.Reason, sip.MinExpires, sip.Field, sip.Limit
	}
	return body
}

func writeErrorBody(w http.ResponseWriter, status int, code, msg string, sip *locsvcv1.SipError) {
	writeJSONValue(w, status, map[string]errBody{"error": newErrBody(code, msg, sip)})
}

func writeJSON(w http.ResponseWriter, status int, m proto.Message) {
	b, err := marshal.Marshal(m)
	if err != nil {
		writeErrorBody(w, http.StatusInternalServerError, "INTERNAL", err.Error(), nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

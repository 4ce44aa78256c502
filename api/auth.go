package api

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Tokens checks a presented API token (internal/apitoken.File does, in
// constant time).
type Tokens interface {
	Check(token string) bool
}

// Auth demands an API token of every gRPC call and every HTTP request,
// except the few an explicit open list names. It wraps whole servers (an
// interceptor on every RPC, a middleware around every route) rather than
// being added route by route, so that an RPC or a route added later is
// protected without anyone remembering to protect it.
//
// The token travels as "Authorization: Bearer TOKEN" (gRPC: metadata
// key authorization), or, for a browser, which can send it no other way
// without a script, as the password of HTTP Basic authentication (any
// user name): a 401 offers both, so a browser asks for it.
type Auth struct {
	tokens    Tokens
	openPaths map[string]bool
}

// OpenPaths are the HTTP paths served without a token: liveness and
// readiness, which orchestrators probe without secrets and which tell
// nothing but up or down. The node adds /metrics unless told to protect
// it too.
var OpenPaths = []string{"/healthz", "/readyz"}

// openServices are the gRPC services callable without a token: health,
// for the same reason as /healthz and /readyz.
var openServices = map[string]bool{"grpc.health.v1.Health": true}

// NewAuth checks tokens against tokens on everything but the HTTP paths
// openPaths (exact paths, as in OpenPaths) and gRPC health.
func NewAuth(tokens Tokens, openPaths ...string) *Auth {
	a := &Auth{tokens: tokens, openPaths: make(map[string]bool)}
	for _, p := range openPaths {
		a.openPaths[p] = true
	}
	return a
}

// verdict is the outcome of looking at a request's credentials.
type verdict int

const (
	allowed verdict = iota
	missing         // no credentials, or not in a form we read
	invalid         // a token, but not one of ours
)

// check judges the values of a request's Authorization header.
func (a *Auth) check(values []string) verdict {
	// Two headers would leave which one counts to the proxies between.
	if len(values) != 1 {
		return missing
	}
	tok, ok := credential(values[0])
	if !ok {
		return missing
	}
	if !a.tokens.Check(tok) {
		return invalid
	}
	return allowed
}

// credential is the token of an Authorization value: "Bearer TOKEN", or
// "Basic base64(USER:TOKEN)". Scheme names are case-insensitive (RFC
// 9110 §11.1).
func credential(h string) (string, bool) {
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok {
		return "", false
	}
	rest = strings.TrimLeft(rest, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return rest, rest != ""
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return "", false
		}
		_, password, ok := strings.Cut(string(raw), ":")
		return password, ok && password != ""
	}
	return "", false
}

// grpcError is the status of a refused call.
func (v verdict) grpcError() error {
	if v == invalid {
		return status.Error(codes.Unauthenticated, "API token not valid for this node")
	}
	return status.Error(codes.Unauthenticated, "API token needed: send authorization: Bearer TOKEN (locsvc clients: --api-token FILE)")
}

// Unary is the unary server interceptor.
func (a *Auth) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if v := a.checkGRPC(ctx, info.FullMethod); v != allowed {
		return nil, v.grpcError()
	}
	return h(ctx, req)
}

// Stream is the stream server interceptor (reflection, health's Watch
// and any streaming RPC to come).
func (a *Auth) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if v := a.checkGRPC(ss.Context(), info.FullMethod); v != allowed {
		return v.grpcError()
	}
	return h(srv, ss)
}

func (a *Auth) checkGRPC(ctx context.Context, fullMethod string) verdict {
	if openServices[serviceOf(fullMethod)] {
		return allowed
	}
	md, _ := metadata.FromIncomingContext(ctx)
	return a.check(md.Get("authorization"))
}

// serviceOf is the service of a full method name, "/pkg.Service/Method".
func serviceOf(fullMethod string) string {
	s := strings.TrimPrefix(fullMethod, "/")
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[:i]
	}
	return ""
}

// HTTP wraps next: a request for a path not open gets 401 unless it
// carries a token.
func (a *Auth) HTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.openPaths[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		v := a.check(r.Header.Values("Authorization"))
		if v == allowed {
			next.ServeHTTP(w, r)
			return
		}
		bearer := `Bearer realm="locsvc"`
		msg := "API token needed: send Authorization: Bearer TOKEN"
		if v == invalid {
			bearer += `, error="invalid_token"` // RFC 6750 §3.1
			msg = "API token not valid for this node"
		}
		w.Header().Add("WWW-Authenticate", bearer)
		w.Header().Add("WWW-Authenticate", `Basic realm="locsvc", charset="UTF-8"`)
		writeErrorBody(w, http.StatusUnauthorized, "UNAUTHENTICATED", msg, nil)
	})
}

// BearerToken is the client side: per-RPC credentials sending token()
// with every call, so that a token file reloaded in between is used at
// once.
//
// They do not require transport security: a client on loopback, or on a
// private network whose operator chose plaintext, must still be able to
// send the token (gRPC would otherwise refuse every call on an insecure
// connection). Whoever can read that network can read the token; the
// node warns at start when it accepts tokens in plaintext on an address
// that is not loopback (docs/security.md).
func BearerToken(token func() string) credentials.PerRPCCredentials { return bearerToken(token) }

type bearerToken func() string

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b()}, nil
}

func (bearerToken) RequireTransportSecurity() bool { return false }

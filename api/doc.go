// Package api exposes the location service core over gRPC (the contract in
// proto/locsvc/v1, generated into api/locsvcv1) and HTTP (health and
// readiness; the JSON API maps the same calls). Besides the proxies'
// calls (LocationService) it serves the operators' (AdminService, admin.go:
// dump the table, remove bindings, count them), which walk the store
// through locsvc.Walker, paced and ended when the node stops.
//
// It only translates: request messages become locsvc.Request values, and
// *locsvc.Error kinds become gRPC codes with a SipError detail, so that a
// SIP front end on the far side of a gRPC connection answers exactly as an
// in-process one would.
package api

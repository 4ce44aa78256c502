// Package locsvcv1 is the generated code of locsvc's public contract,
// proto/locsvc/v1 (LocationService: Register, Lookup; ClusterService:
// Status): the messages and the gRPC client and server stubs. Every file
// here but this one is written by `make generate` (buf, protoc-gen-go,
// protoc-gen-go-grpc) and must not be edited; `make check-generated`
// fails when they are stale. Package api translates between these
// messages and the core.
package locsvcv1

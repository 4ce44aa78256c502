// Package recordpb is the generated protobuf code for the record locsvc
// stores per AoR (proto/locsvc/record/v1/record.proto). It is internal to
// package locsvc, whose Encode and Decode are the only users: the stored
// format is not part of the API, which exposes bindings through
// locsvc.v1 instead. This file is written by hand; the rest is generated
// by make generate.
package recordpb

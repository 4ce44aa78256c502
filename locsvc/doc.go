// Package locsvc is the core of the location service: what a SIP
// registrar's user-location table is and the rules that change it,
// independent of where the table is stored and of how requests arrive.
//
// It holds:
//
//   - Addresses and keys: NormalizeAoR turns a To URI into the
//     address-of-record (RFC 3261 §10.3), StoreKey turns that into the
//     storage and placement key, BindingID gives a contact its identity
//     within the AoR (RFC 5626 instance and reg-id, else the contact URI).
//   - The data: Binding, BindingSet, and the stored form (Encode, Decode:
//     a format byte plus a protobuf record).
//   - Merge, the join of two versions of a binding set (commutative,
//     associative, idempotent; see Merge), which is how replicas converge.
//   - The registrar rules: Check validates a REGISTER against Limits,
//     Apply applies it to what is stored. Unbind removes bindings a front
//     end found unreachable, each only in the version it saw (BindingRef),
//     so that it never races the phone registering again.
//   - Service, which runs those rules over a Store for every front end
//     (gRPC, HTTP/JSON, SIP), and Error, the one error model they all
//     translate by its Kind (Error.SIPCode gives the SIP answer).
//   - The operators' calls (admin.go): Service.Dump and Service.Counts walk
//     a Walker, a Store that can hand over every record once, paced;
//     Service.Remove is Unbind with the versions the store itself read.
//   - Store, the storage interface, and MemStore, the embedded in-memory
//     implementation a single node runs on. The replicated memcached store
//     is in package ringstore.
//
// It exists so that each rule is written once: the front ends only
// translate requests and answers, and the stores only merge, so every
// combination of front end and store answers the same request the same
// way. The package knows nothing of memcached, gossip, gRPC or SIP
// messages.
package locsvc

// Package sipfront is locsvc's SIP front end: a registrar (RFC 3261 §10.3,
// Path per RFC 3327, the reg-id/instance part of RFC 5626) and a redirect
// server (302 with the AoR's contacts), with digest authentication
// (RFC 7616/8760: SHA-256 and MD5, qop=auth). It talks to the location
// service only through Locator, so it runs in-process or in front of a
// remote cluster unchanged. Proxy mode is not implemented yet.
//
// # Wire handling
//
// Registrar and redirect modes do not use sipgo's transaction layer, which
// keeps every UDP server transaction (and, for INVITE, a goroutine) alive
// for up to 32 s and halves throughput. sipgo's parser and message types
// are used; UDP datagrams are read by a few reader goroutines and TCP by one
// stream parser per connection; each request is then handled on its own
// short-lived goroutine, bounded by Config.MaxInFlight.
//
// Responses to UDP requests go to the source address of the request: the
// top Via gets received= whenever its sent-by host is not the source
// address (so RFC 3261 §18.2.2's "received" rule always names the source),
// and rport (RFC 3581) selects the source port; without rport the sent-by
// port is used (5060 when absent). maddr is ignored. TCP responses go back
// on the connection the request came in on.
//
// A registrar may not be stateless (RFC 3261 §8.2.7): a retransmitted
// REGISTER must get the same answer, and running it again would now fail
// the CSeq check. The final response to every REGISTER is kept for 32 s in
// a table keyed by top Via branch, sent-by and method (txcache.go); a
// retransmission arriving while the first copy is still being handled is
// dropped, as a server transaction in the Trying state does. The table is
// bounded (Config.TxCacheSize): under a load that fills it, the oldest
// entries go before their 32 s are up. Redirect answers are stateless, with
// a To tag derived from the request so that a retransmitted INVITE gets the
// same tag; only the key of each INVITE is remembered, so that a CANCEL can
// be answered 200 (transaction known) or 481 (unknown).
//
// # Answers chosen where the RFCs leave a choice
//
//   - A Request-URI outside Config.Domains: 404 "Domain Not Served"
//     (RFC 3261 §21.4.5 names 404 for a domain the server does not handle).
//     For REGISTER the server's own address (listen or advertised host) is
//     also accepted as Request-URI host, since many UAs register to the
//     registrar's IP; the AoR (To) must still be in a served domain, else
//     404 "AoR Not In Served Domain" (§10.3 step 4).
//   - AoRs are sip:user@domain without port: a port in the To or
//     Request-URI host of a served domain is dropped, so that a REGISTER to
//     sip:alice@example.com:5060 and an INVITE to sip:alice@example.com
//     name the same AoR.
//   - Require with an option tag other than path or outbound on a REGISTER:
//     420 with Unsupported. Require on other requests is not checked: the
//     redirect server answers them finally and at once.
//   - Max-Forwards: 0 gets 483, except OPTIONS, which the server answers
//     itself (RFC 3261 §11, §16.3).
//   - Registrar Contact list in the 200: every current binding as
//     <uri>;expires=N, with ;q= only when q is not 1, and +sip.instance and
//     reg-id for RFC 5626 bindings. A Date header is always added.
//   - Redirect Contact list in the 302: every current binding, best q first,
//     always with ;q=, and with the binding's stored Path as an escaped
//     ?Route= URI header (RFC 3261 §19.1.5). An AoR with no current
//     binding gets 404: the Locator cannot tell "never registered" from
//     "all expired", so 480 is not used yet.
//   - Path ("calls go home"): the node that accepts a REGISTER prepends its
//     own <sip:ADVERTISE;lr> (with ;ob when the UA asked for outbound: a
//     Contact with reg-id and Supported: outbound) to the Path vector it
//     stores. Path is stored whether or not the UA sent Supported: path
//     (no 420), and echoed in the 200 only when it did; the echo is the
//     full stored vector, this node's entry first, which is what RFC 3327
//     §5.3 asks a registrar to return.
//   - Locator errors: a *locsvc.Error answers with its SIPCode and
//     SIPReason (423 adds Min-Expires; 503 adds Retry-After); anything else
//     is 500.
//
// # Authentication
//
// Digest auth applies to REGISTER (and, with Config.AuthAll, to requests
// the redirect server answers by lookup) from sources outside
// Config.Trusted. The realm is the first domain. The challenge offers the
// algorithms the credential store holds HA1s for, SHA-256 first (one
// WWW-Authenticate header per algorithm), with qop="auth"; an answer
// without qop (RFC 2069) is accepted for old UAs.
//
// Nonces are stateless: base64(timestamp || HMAC-SHA256(key, timestamp ||
// realm)), so every node sharing Config.NonceKey accepts every other's. A
// nonce older than Config.NonceLifetime, or one this key did not make (a
// node restarted with a random key, a rotated key), gets a fresh 401 with
// stale=true when the digest was otherwise right; a replay is therefore
// possible within the lifetime and impossible after it. Nonce counts are
// not tracked.
//
// A wrong password, an unknown user and an algorithm the user has no HA1
// for all get the same 403 "Forbidden", after the same amount of hashing,
// so answers do not reveal which users exist. An authenticated user
// registering someone else's AoR gets 403 "Username Does Not Match AoR"
// (with AuthAll, a redirected request's From user must match likewise). A
// malformed Authorization header, an unsupported algorithm or qop, or a
// digest uri that is not the Request-URI gets 400 naming the fault; for
// REGISTER, a digest uri naming any address the registrar accepts as
// Request-URI (a served domain or this node) is taken too, since a proxy in
// front may rewrite the Request-URI.
//
// Without credentials the server runs open. New refuses that on a
// listen address that is not loopback unless Config.AllowOpen is set (like
// Redis's protected mode), and logs a warning when it runs open on
// loopback.
package sipfront

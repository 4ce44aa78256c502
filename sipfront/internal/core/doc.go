// Package core is what the SIP front end answers, without any wire: a
// parsed request plus the facts only the wire knows (source address,
// transport, arrival time) in, the response to send out. It holds the
// registrar (RFC 3261 §10.3, RFC 3327 Path, RFC 5626 reg-id and flow
// tokens, RFC 5627 GRUUs), the redirect server, digest authentication, the REGISTER rate limit, the
// request checks every request must pass, the one way responses are built
// (NewResponse) and rendered (Render), the counters behind sipfront.Stats,
// and the one last-resort recovery (Recover).
//
// It exists so that sipfront's front ends (its own UDP/TCP/TLS transports,
// and the sipgo-based proxy) give the same answers through one code path,
// and so that a new transport (WebSocket, RFC 7118) needs no change here.
// It is internal to sipfront: its API is shaped by the two front ends and
// may change with them, while sipfront's exported names (some of them
// aliases of names here) are what callers depend on.
//
// A front end calls, per request: Check (malformed requests), then its
// own retransmission handling if it has no transaction layer, then Quick
// (answers needing no Locator call, cheap enough for a reading
// goroutine), then Serve with Context(in) (the deadline counts from the
// request's arrival) on a handler goroutine. The proxy also calls
// Bindings (auth and lookup for forking) and Options. Every front end
// defers Recover around the work it does for a message.
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
//   - Require with an option tag other than path, outbound or gruu on a REGISTER:
//     420 with Unsupported. Require on other requests is not checked: the
//     redirect server answers them finally and at once.
//   - Max-Forwards: 0 gets 483, except OPTIONS, which the server answers
//     itself (RFC 3261 §11, §16.3).
//   - Registrar Contact list in the 200: every current binding as
//     <uri>;expires=N, with ;q= only when q is not 1, and +sip.instance and
//     reg-id for RFC 5626 bindings. A Date header is always added.
//   - GRUUs (RFC 5627, gruu.go): only to a REGISTER with Supported: gruu,
//     and in it for every binding whose +sip.instance is a URN in angle
//     brackets (other instance IDs get none): pub-gruu is the AoR with
//     gr=URN; temp-gruu is sip:tgruu.TOKEN@DOMAIN;gr, TOKEN sealing the AoR,
//     the instance and a hash of the binding's Call-ID (internal/gruu), a
//     new one in every 200. Nothing is stored for either. A request to a
//     GRUU reaches that instance's bindings only; a temp-gruu that does not
//     open, or whose instance is registered under another Call-ID now (RFC
//     5627 invalidates it), gets 404; a GRUU whose instance has no live
//     binding gets 480 when the AoR had bindings recently, 404 otherwise,
//     as for an AoR.
//   - Redirect Contact list in the 302: every current binding, best q first,
//     always with ;q=, and with the binding's stored Path as an escaped
//     ?Route= URI header (RFC 3261 §19.1.5). An AoR with no current
//     binding gets 480 Temporarily Unavailable when it had bindings
//     recently (the store keeps lapsed and removed entries for
//     --max-expires; Result.Known), else 404 Not Found.
//   - Path ("calls go home"): in proxy mode the node that accepts a
//     REGISTER prepends its own <sip:ADVERTISE;lr> (with ;ob when the UA
//     asked for outbound: a Contact with reg-id and Supported: outbound)
//     to the Path vector it stores. Registrar and redirect modes store the
//     REGISTER's Path as it came: they are no proxies, and a 302 routed
//     back through a redirect server would loop. Path is stored whether or
//     not the UA sent Supported: path (no 420), and echoed in the 200 only
//     when it did; the echo is the full stored vector (this node's entry
//     first in proxy mode), which is what RFC 3327 §5.3 asks a registrar
//     to return.
//   - Outbound registrations (reg-id with Supported: outbound) get
//     Require: outbound and, when Config.FlowTimer is set (the node's
//     --flow-timer, 120 s by default), Flow-Timer in whole seconds: the
//     RFC lets a registrar send it or not, and sending it tells the UA how
//     often to keep the flow alive instead of leaving it to guess.
//   - Locator errors: a *locsvc.Error answers with its SIPCode and
//     SIPReason (423 adds Min-Expires; 503 adds Retry-After); anything else
//     is 500.
//   - Limits (limits.go, docs/limits.md): a REGISTER over the per-source
//     rate (Config.RegisterRate; Trusted sources exempt) gets 503 "REGISTER
//     Rate Limit Exceeded" with Retry-After, before any Locator call; a
//     message over sipfront's Config.MaxMessageSize gets 513 (§21.5.14)
//     when its header can be parsed (the front ends see the bytes, so they
//     judge the size; the core builds the 513), and over TCP the
//     connection is then closed. Each hit is counted in Stats.Limited.
//
// # Authentication
//
// Digest auth applies to REGISTER (and, with Config.AuthAll, to requests
// the redirect server answers by lookup or the proxy forwards by lookup,
// the latter challenged with 407 and Proxy-Authenticate) from sources
// outside Config.Trusted. The realm is the first domain. The challenge offers the
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
package core

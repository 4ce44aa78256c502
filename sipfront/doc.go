// Package sipfront is locsvc's SIP front end: a registrar (RFC 3261 §10.3,
// Path per RFC 3327, the reg-id/instance part of RFC 5626), a redirect
// server (302 with the AoR's contacts) and a stateful forking proxy
// (RFC 3261 §16), with digest authentication (RFC 7616/8760: SHA-256 and
// MD5, qop=auth), over UDP, TCP, TLS and WebSocket (RFC 7118), with
// RFC 5626 outbound flows, RFC 5627 GRUUs and NAT keepalives from each
// phone's home node. It talks to the location service only through
// Locator (and Unbinder, to remove bindings found unreachable), so it
// runs in-process or in front of a remote cluster unchanged.
//
// # Layers
//
// What a request gets is decided by the core (internal/core): a parsed
// request plus its source, transport and arrival time in, the response
// out. It holds the registrar, the redirect server, digest auth, the
// REGISTER rate limit, the request checks, the one way responses are
// built and rendered, the counters behind Stats and the one last-resort
// recovery (core.Recover: a panic is counted, logged and answered 500
// once). Its package doc lists the answers chosen where the RFCs leave a
// choice. The core knows no sockets, so every front end gets the same
// answers.
//
// A front end (frontEnd in server.go: serve the sockets Start opened,
// close) puts the core on the wire. Server holds one of two:
//
//   - stateless (stateless.go) in registrar and redirect modes: locsvc's
//     own transports (transport_udp.go, transport_tcp.go,
//     transport_tls.go, transport_ws.go), a retransmission table (txcache.go) in place of
//     transactions, and a bounded handler pool.
//   - proxy (proxy.go) in proxy mode: sipgo's transports and transactions
//     on sockets the proxy owns (proxy_wire.go); REGISTER, auth, limits
//     and lookups go to the core, forwarding is its own.
//
// The stateless front end also sheds load past capacity (overload.go,
// Config.Overload): each request's wait, from the kernel's receive
// timestamp to its handling, feeds internal/overload's controller, and a
// new REGISTER or INVITE it refuses gets a 503 whose Retry-After books
// the phone's return (it is taken then, ahead of new phones), before any
// storage call; one already late as it is read gets it from a scan of
// the datagram (internal/siphead), before any parse, and the reader
// sends a batch's refusals in one sendmmsg (transport_udp.go). New
// REGISTERs and INVITEs hold at most a quarter of the handler slots
// (stateless.go, newWorkShare), and only as many as there are standing
// handlers once the node is refusing (internal/overload's WorkLimit):
// past that one is refused from the scan too, whatever its wait, which
// bounds the work in hand. Requests
// inside a dialog, ACK, CANCEL and retransmissions of requests being
// served are never refused. In proxy mode the UDP reader refuses the
// late ones the same way before sipgo sees them, and the handlers judge
// the others on the arrival times the reader noted (proxy_wire.go),
// refusing through sipgo's transaction.
//
// Beside the front ends, both share what outlives a request: the table of
// open connections (conns.go: each a flow, by remote address), the
// bindings that only a connection reaches (flows.go) and the NAT
// keepalives (nat.go).
//
// SIP over WebSocket (RFC 7118; transport_ws.go, Config.WSAddr and
// WSSAddr) is one more transport of the stateless front end, touching
// neither the core nor the other transports. coder/websocket does the
// framing (Pongs, fragments, text and binary messages, close frames); an
// http.Server takes the upgrade, bounded by a 10 s header deadline. The
// upgrade must offer the "sip" subprotocol (else 400) and, with
// Config.WSOrigins set, carry one of those Origins (else, or with no
// Origin at all, 403); refusals are counted in Stats.WSRefused. Each
// message is exactly one SIP message (§5), text or binary: it is parsed
// with the front end's parser as a datagram is and handed to receive
// with the connection as its sink (name "ws" or "wss", which bindings
// record), and each answer goes back as one text message. A broken
// message gets its 400 and the connection goes on, since framing cannot
// be lost; a message over MaxMessageSize ends the connection with 1009.
// A message of only CRLFs is a keep-alive, a double CRLF among it a ping
// answered "\r\n" (streamKeepAlive, shared with TCP). The server Pings
// every 30 s and closes a peer that answers none in 10 s; a connection
// that sends no message for TCPIdleTimeout is closed, as over TCP (Pongs
// prove the peer alive, not that it still uses the connection).
// Connections are bounded by MaxTCPConns apart from TCP's, counted in
// Stats.WSConns. Close stops the upgrades, lets each connection's answers
// in hand go out, then closes it with 1001 (going away), waiting at most
// the library's 5 s for the peer's close frame.
//
// Proxy mode serves WebSocket with the same transport, not sipgo's (which
// sends no Pong, drops binary and fragmented messages and reads without a
// bound): each upgraded connection becomes a stream (wsStream) that
// sipgo's TCP transport accepts from an in-process listener, so its
// transactions and connection pool work unchanged. A message is given a
// Content-Length when it has none (optional over WebSocket, needed on a
// stream); one whose Content-Length is wrong is dropped and counted as a
// parse error. Keep-alives are answered before sipgo sees them. sipgo
// names these streams TCP; the connection table knows them as ws or wss,
// which is what bindings, Vias and Record-Routes say.
//
// # Wire handling
//
// Registrar and redirect modes do not use sipgo's transaction layer, which
// keeps every UDP server transaction (and, for INVITE, a goroutine) alive
// for up to 32 s and halves throughput. sipgo's parser and message types
// are used; UDP datagrams are read by a few reader goroutines and TCP by one
// stream parser per connection; each request that needs the Locator is
// then handled on a pooled goroutine, bounded by Config.MaxInFlight.
// Answers that need no Locator call (request checks, the rate limit,
// OPTIONS for the server, 405, CANCEL) are sent by the reader itself.
// Each request's deadline is Config.RequestTimeout from its arrival, so
// that time spent waiting for a handler counts.
//
// Responses to UDP requests go to the source address of the request: the
// top Via gets received= whenever its sent-by host is not the source
// address (so RFC 3261 §18.2.2's "received" rule always names the source),
// and rport (RFC 3581) selects the source port; without rport the sent-by
// port is used (5060 when absent). maddr is ignored. TCP responses go back
// on the connection the request came in on. SIP over TLS (Config.TLSAddr,
// RFC 3261 §26.2) is served in every mode: in registrar and redirect modes
// it is the TCP transport on tls.Conn, in proxy mode sipgo's TLS
// transport; the same framing, answers on the connection, bindings
// recorded with transport "tls". No client certificate is asked for
// (digest auth is how UAs prove who they are).
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
// Flow keepalives (RFC 5626 §4.4) are answered by the transports, never
// reaching the core: on TCP, TLS and WebSocket a double CRLF gets a CRLF back, and on
// UDP a STUN Binding request gets a Binding success response naming the
// source address (internal/stun), so that a phone behind NAT sees its
// mapping and can tell when it changes. In proxy mode the same: the UDP
// socket sipgo reads is filtered (udpReader), sipgo's TCP transport
// answers a double CRLF itself, and WebSocket keep-alives never reach it.
//
// A message over Config.MaxMessageSize gets 513 (§21.5.14) when its header
// can be parsed, and over TCP the connection is then closed (limits.go,
// docs/limits.md); each hit is counted in Stats.Limited.
//
// # Proxy mode
//
// Proxy mode (proxy*.go, fork.go, targets.go) runs on sipgo's transport and
// transaction layers: forking, CANCEL and the ACK of non-2xx answers need
// server and client transactions. One sipgo user agent carries a server
// (handlers per method) and a client on the sockets Start opened; requests
// sent over UDP leave from the listening socket (so their answers come back
// to it), with a top Via naming the advertised address.
//
//   - REGISTER: the core's registrar. The node's own Path entry is stored
//     (calls go home); its 200 is kept by the server transaction.
//   - OPTIONS to the node itself (no user part, or its own address): 200.
//   - Every request: top Via gets received/rport; a malformed request or
//     Max-Forwards 0 is answered (400, 483) as in the other modes.
//     Route entries at the top naming this node (advertised or listen
//     host:port) are removed (loose routing, §16.4).
//   - A request left with a Route set, for a domain not served, or inside
//     a dialog (To tag) goes to its next hop (top Route, else the
//     Request-URI), but only when it was routed through this node (it
//     carried this node's Route) or comes from a Trusted source: otherwise
//     404 "Domain Not Served" (403 inside a dialog or with a Route set of
//     others), so the node is no open relay. A next hop that is this node
//     again gets 482.
//   - Any other request for a served domain: with AuthAll, digest auth in
//     the proxy form (Proxy-Authorization, 407 with Proxy-Authenticate);
//     then Lookup of the Request-URI's AoR (480 or 404 when there is no
//     live binding, as in redirect mode), then forking.
//   - Forking: bindings in groups of equal q, highest first; a group's
//     branches run in parallel, groups in sequence. Each branch has the
//     contact as Request-URI, the binding's Path as Route set, Max-Forwards
//     decremented, this node's Record-Route (<sip:ADVERTISE;lr>, with
//     ;transport=tcp or ;transport=tls off UDP) on initial requests, two of them when the
//     branch leaves on another transport than the request came on (double
//     record-routing, RFC 5658), and a new top Via (sipgo's
//     ClientRequestAddVia).
//   - The home entry: a REGISTER this node accepts gets it as first Path
//     entry, <sip:NODE;lr> (with ;ob for an outbound one). When the phone
//     is reached on the flow it registered over rather than at its
//     contact (a connection, an RFC 5626 flow, or UDP from another IP
//     than the contact's: NAT), the entry's user part is a flow token
//     (internal/flowtoken, signed with Config.FlowKey) naming the
//     transport, source address and connection. A UDP REGISTER from the
//     contact's IP but another port is taken as a UA that listens at its
//     contact (sipp does).
//   - Where a branch goes (targetFor): a first Path entry naming this node
//     is dropped; with no Path left after it, its flow token (if any) is
//     the destination, else the contact. When the first Path entry is
//     another node (the UA registered there), the branch goes to it with
//     the Path as Route; that node pops its entry, checks the token (403
//     Forbidden when it does not verify), finds the flow (430 Flow Failed
//     when its connection is gone) and sends the request on it, record-
//     routing too, so in-dialog requests cross both nodes. When that node
//     has left the farm (Config.Peers) and its entry is the whole Path,
//     the token is followed directly: the farm shares the key.
//   - Flows (RFC 5626 §5.3): the bindings of one instance that carry
//     reg-ids make one target, the newest first; the next flow is tried
//     when one fails (no connection, 430, a send error), never in
//     parallel. A 430 reaching the node that looked the user up becomes
//     480 when every flow failed. When a connection closes, the bindings
//     only it reaches (its reg-id flows, every binding made over
//     WebSocket) are removed through Unbinder in the version registered
//     over it, so no node sends to them any more (Stats.FlowsUnbound).
//   - GRUUs (RFC 5627; the core's): a Request-URI that is a GRUU reaches
//     that instance's bindings only, inside a dialog too, since a UA may
//     give its GRUU as its Contact (JsSIP does); an ACK to one is routed
//     the same way.
//   - A request leaving over UDP toward a proxy (a Route, not a phone)
//     beyond RFC 3261 §18.1.1's 1300 bytes goes over TCP instead; to a
//     phone reached over UDP alone it goes as one datagram however large.
//   - Answers: 100 is not relayed (sipgo's server transaction sends its
//     own); other provisional answers are relayed at once. The first 2xx
//     is relayed at once and the other branches are cancelled; its
//     retransmissions are relayed statelessly. Without a 2xx, once a group
//     has answered: a 6xx ends the search; after the last group the caller
//     gets the best final (a 6xx, else the lowest class, the first
//     received; 503 becomes 500, §16.7), or 408 when a branch timed out
//     and nothing answered, 480 when no branch could be sent or reached.
//   - CANCEL from the caller: sipgo answers it 200 and the INVITE 487;
//     every pending branch is cancelled (CANCEL sent once it has had a
//     provisional answer, §9.1; a branch with none ends by Timer B). A
//     CANCEL matching no transaction gets 481. An INVITE still ringing
//     after Timer C (3 min 10 s) is cancelled and answered 408.
//   - ACK for a 2xx (a new transaction) is forwarded statelessly by its
//     Route set once this node's entry is removed; one that carried no
//     Route of this node is dropped.
//
// Costs: sipgo handles each
// request on its own goroutine, and its transactions outlive their
// handler (timers, 32 s for UDP). sipgo parks a goroutine on the ACK of a
// non-2xx answer to an INVITE until Timer I (5 s) unless someone reads
// it: the INVITE handler does, waiting for that ACK (at most 4 s), which
// usually comes within a round trip. The proxy adds one goroutine per
// branch, ending with the branch's final answer (the client transaction
// is then left to its own timers), one per CANCEL sent, ending with its
// answer, and none per call once it is answered
// (TestProxyNoGoroutineGrowth). Config.MaxInFlight does not bound proxy
// mode, and its Stats count requests, responses sent (relayed ones
// included), panics and dropped ACKs, but not parse errors,
// retransmissions or TCP connections, which sipgo handles unseen.
//
// Not done: a second 2xx from another branch (a race with the CANCEL) is
// dropped, not relayed (the callee's dialog then times out); 401/407
// answers of several branches are not merged; a strict-routing previous
// hop (Request-URI naming this node) is not handled; requests the node
// relays for others (ACK, in-dialog, routed) are not counted per target;
// the Flow-Timer is announced, not enforced (a flow ends when its
// connection does: WebSocket Pings and the idle timeout find dead ones).
//
// # NAT keepalives
//
// With Config.NATPing (nat.go), a phone registered here over UDP whose
// contact IP is not its source IP is behind NAT, and this node holds its
// pinhole: this node, and no other, sends it an OPTIONS (or a 4-byte
// CRLF) once per interval, from the SIP port, to the address the REGISTER
// came from. The phones of one node go round in a fixed order, a share of
// them every 100 ms, so the pings are spread evenly over the interval.
// Before each ping the binding is read again: a phone that registered
// through another node since, unregistered or expired is dropped at its
// next turn, so two nodes never ping one phone for longer than an
// interval. An OPTIONS unanswered by the phone's next turn is a miss;
// Misses in a row remove the binding through every node (Unbinder). A
// phone whose home node is gone is pinged by the node Config.Peers names
// (the node holding the first live replica of its record), which finds
// such phones by walking its shard (the node package does this, after
// every ring change); a node that starts walks every shard once, to find
// its own phones again after a restart.
//
// Without credentials the server runs open. New refuses that on a
// listen address that is not loopback unless Config.AllowOpen is set (like
// Redis's protected mode), and logs a warning when it runs open on
// loopback.
package sipfront

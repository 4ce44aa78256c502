// Package sipuri is the one SIP URI and name-addr grammar of locsvc
// (RFC 3261 §19.1, §20.10, §25.1): parsing a sip: or sips: URI into its
// parts, the §19.1.4 comparison rules as a canonical rendering, escaping
// and unescaping, the lexical character classes (token, digit, alnum,
// hex, unreserved), and the header grammar around URIs: display names,
// <uri>, ;params, quoted strings and comma-separated lists that honour
// quotes and angle brackets.
//
// It exists so that the location service (which compares contacts and
// normalises AoRs) and the SIP front end (which parses Contact, Path,
// Route and Authorization headers) read the same text the same way: two
// grammars drifting apart would store a binding one side cannot match.
// It is a leaf package (standard library only) so that both can import it.
//
// sipgo's sip.ParseUri is not replaced where sipfront meets sipgo's
// types: proxy mode builds sipgo requests, whose Request-URI is a sip.Uri
// (a branch's contact, a next hop's address), the digest uri is compared
// field by field with the Request-URI sipgo parsed, and a From or To is
// checked to parse back the way sipgo renders it. That is sipgo's API
// boundary, not a second grammar of ours: what locsvc stores and compares
// is read by this package.
package sipuri

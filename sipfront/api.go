package sipfront

import (
	"io"

	"github.com/locsvc/locsvc/sipfront/internal/core"
)

// The core (internal/core) defines these; they are sipfront's API, named
// here so that callers need not know how the package is layered.

// Locator is the location service as the SIP front end uses it. The
// in-process core (*locsvc.Service) satisfies it, and so does a gRPC client
// of a remote cluster (api.Client), so a front end runs unchanged next to
// its store or in front of someone else's. Errors that refuse a request are
// *locsvc.Error values: their SIPCode, SIPReason and MinExpires are the
// answer to send.
type Locator = core.Locator

// Modes of the front end.
const (
	ModeRegistrar = core.ModeRegistrar // REGISTER only; other requests get 405
	ModeRedirect  = core.ModeRedirect  // registrar, plus 302 for other requests
	ModeProxy     = core.ModeProxy     // registrar plus stateful proxy (sipgo's transaction layer)
)

// Algorithm is a digest algorithm (RFC 7616, RFC 8760).
type Algorithm = core.Algorithm

// Digest algorithms, strongest first.
const (
	MD5    = core.MD5
	SHA256 = core.SHA256
)

// Credentials is where digest authentication finds users. CredentialFile
// implements it; a database-backed store could too.
type Credentials = core.Credentials

// CredentialFile is a credentials file loaded in memory: one
// "user:realm:HA1" per line (see LoadCredentials).
type CredentialFile = core.CredentialFile

// HA1 is H(user:realm:password) in lower-case hex: what a credentials
// file stores instead of the password. alg is MD5 or SHA256.
func HA1(user, realm, password string, alg Algorithm) (string, error) {
	return core.HA1(user, realm, password, alg)
}

// LoadCredentials reads a credentials file. A file without a single entry
// is an error: asking for authentication and getting none would leave the
// server open.
func LoadCredentials(path string) (*CredentialFile, error) { return core.LoadCredentials(path) }

// ParseCredentials reads credentials in the file format.
func ParseCredentials(r io.Reader) (*CredentialFile, error) { return core.ParseCredentials(r) }

// CredentialLine renders one credentials file line for a password, for
// `locsvc passwd`.
func CredentialLine(user, realm, password string, alg Algorithm) (string, error) {
	return core.CredentialLine(user, realm, password, alg)
}

// LoadKey reads a key shared by the nodes of a farm (Config.NonceKey,
// Config.FlowKey) from a file (its bytes, surrounding whitespace removed;
// at least 16).
func LoadKey(path string) ([]byte, error) { return core.LoadKey(path) }

// Stats are the front end's counters since Start, a value snapshot.
type Stats = core.Stats

// Histogram counts durations into AnswerBuckets.
type Histogram = core.Histogram

// AnswerBuckets are the upper bounds of the answer-time histogram: from a
// fast in-memory answer to a memcached call that hit its timeout.
var AnswerBuckets = core.AnswerBuckets

// Limit names, as counted in Stats.Limited and exported as the limit
// label of locsvc_sip_limited_total.
const (
	// LimitRegisterRate: REGISTERs from one source over Config.RegisterRate
	// (503).
	LimitRegisterRate = core.LimitRegisterRate
	// LimitMessageSize: a message over Config.MaxMessageSize (513, or
	// dropped when it cannot be answered).
	LimitMessageSize = core.LimitMessageSize
	// LimitContacts: too many contacts for the AoR (403).
	LimitContacts = core.LimitContacts
	// LimitURILength: an AoR, contact or Path URI over the URI length
	// limit (400).
	LimitURILength = core.LimitURILength
	// LimitFieldLength: Call-ID, User-Agent, +sip.instance or the source
	// over the field length limit (400).
	LimitFieldLength = core.LimitFieldLength
	// LimitPathEntries: more Path entries than allowed (400).
	LimitPathEntries = core.LimitPathEntries
)

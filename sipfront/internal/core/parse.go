package core

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// NewParser is sipgo's parser with two changes. A header that its typed
// parser rejects is kept as a generic header of the same (canonical) name
// instead of failing the whole message, so the rest of the message still
// parses and the 400 can name the header and reach the sender. Contact is
// not parsed by sipgo at all: parseContacts parses it, keeping each URI as the
// UA wrote it.
func NewParser() *sip.Parser {
	parsers := make(map[string]sip.HeaderParser)
	for name, p := range sip.DefaultHeadersParser() {
		parsers[name] = tolerant(canonicalName(name), p)
	}
	raw := func(_ []byte, text string) (sip.Header, error) { return sip.NewHeader("Contact", text), nil }
	parsers["contact"], parsers["m"] = raw, raw
	return sip.NewParser(sip.WithHeadersParsers(parsers))
}

func tolerant(name string, p sip.HeaderParser) sip.HeaderParser {
	return func(hn []byte, text string) (sip.Header, error) {
		h, err := p(hn, text)
		// sipgo's parsers signal a comma-separated list with an error
		// value of an unexported type; it must pass through untouched.
		if err == nil || err.Error() == "comma detected" {
			return h, err
		}
		return sip.NewHeader(name, text), nil
	}
}

var canonicalNames = map[string]string{
	"v": "Via", "f": "From", "t": "To", "i": "Call-ID", "l": "Content-Length", "c": "Content-Type",
	"cseq": "CSeq", "call-id": "Call-ID", "max-forwards": "Max-Forwards",
}

func canonicalName(lower string) string {
	if n, ok := canonicalNames[lower]; ok {
		return n
	}
	parts := strings.Split(lower, "-")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "-")
}

// malformedHeader names the first header whose typed parser rejected it
// (left as a generic header by tolerant), among those this server relies
// on.
func malformedHeader(req *sip.Request) string {
	for _, h := range req.Headers() {
		switch h.(type) {
		case *sip.ViaHeader, *sip.FromHeader, *sip.ToHeader, *sip.CallIDHeader, *sip.CSeqHeader,
			*sip.MaxForwardsHeader, *sip.ContentLengthHeader:
			continue
		}
		switch n := h.Name(); n {
		case "Via", "From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length":
			return n
		}
	}
	return ""
}

// ParseFault is the reason phrase for a message sipgo could not parse.
func ParseFault(err error) string {
	switch {
	case errors.Is(err, sip.ErrParseReadBodyIncomplete):
		return "Bad Request (Body Shorter Than Content-Length)"
	case errors.Is(err, sip.ErrMessageTooLarge):
		return "Message Too Large"
	case errors.Is(err, sip.ErrParseEOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "Bad Request (Truncated Message)"
	case errors.Is(err, sip.ErrParseLineNoCRLF):
		return "Bad Request (Line Not Ended By CRLF)"
	}
	return "Bad Request (Malformed Message)"
}

// requestFault checks what every request must carry (RFC 3261 §8.1.1,
// §8.2) and returns the answer to a request that fails, or 0.
// The top Via was checked by the caller: without it nothing can be
// answered.
func requestFault(req *sip.Request) (int, string) {
	if h := malformedHeader(req); h != "" {
		return 400, fmt.Sprintf("Bad Request (Malformed %s Header)", h)
	}
	if req.From() == nil {
		return 400, "Bad Request (Missing From Header)"
	}
	if !echoable(req.From()) {
		return 400, "Bad Request (Malformed From Header)"
	}
	if req.To() == nil {
		return 400, "Bad Request (Missing To Header)"
	}
	if !echoable(req.To()) {
		return 400, "Bad Request (Malformed To Header)"
	}
	if req.CallID() == nil {
		return 400, "Bad Request (Missing Call-ID Header)"
	}
	cseq := req.CSeq()
	if cseq == nil {
		return 400, "Bad Request (Missing CSeq Header)"
	}
	if !strings.EqualFold(string(cseq.MethodName), string(req.Method)) {
		return 400, "Bad Request (CSeq Method Does Not Match)"
	}
	if req.SipVersion != "SIP/2.0" {
		return 505, "Version Not Supported"
	}
	if s := req.Recipient.Scheme; s != "sip" && s != "sips" {
		return 416, "Unsupported URI Scheme"
	}
	if req.Recipient.Host == "" {
		return 400, "Bad Request (Malformed Request-URI)"
	}
	if mf := req.MaxForwards(); mf != nil && *mf == 0 && req.Method != sip.OPTIONS {
		return 483, "Too Many Hops"
	}
	return 0, ""
}

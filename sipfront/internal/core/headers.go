package core

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/sipuri"
)

// HeaderValues returns the values of every header named name or its
// compact form (either may be ""), in order. sipgo keeps the names of
// headers it has no parser for as they were written, so the match ignores
// case here.
func HeaderValues(msg *sip.Request, name, compact string) []string {
	var out []string
	for _, h := range msg.Headers() {
		n := h.Name()
		if strings.EqualFold(n, name) || (compact != "" && strings.EqualFold(n, compact)) {
			out = append(out, h.Value())
		}
	}
	return out
}

// optionTags collects the comma-separated option tags of every header
// named name (Supported, Require...), lower-cased.
func optionTags(msg *sip.Request, name, compact string) []string {
	var out []string
	for _, v := range HeaderValues(msg, name, compact) {
		for _, t := range strings.Split(v, ",") {
			if t = strings.ToLower(sipuri.TrimLWS(t)); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

func hasTag(tags []string, tag string) bool {
	for _, t := range tags {
		if t == tag {
			return true
		}
	}
	return false
}

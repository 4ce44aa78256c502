package core

import (
	"math"
	"net/netip"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/locsvc/locsvc/locsvc"
)

// The core's limits are refusals made before a request costs a storage
// round trip: the REGISTER rate. Message size is the front ends' (they
// see the bytes); the location limits (contacts, URI length) are the
// Locator's, and the core only counts their hits (countLocatorLimit).
// docs/limits.md lists them all.

// registerLimited returns the 503 for a REGISTER from src over the rate
// limit, or nil when it may go on. Trusted sources are exempt: a proxy in
// front sends every one of its users' REGISTERs from one address.
func (c *Core) registerLimited(req *sip.Request, src netip.Addr) *sip.Response {
	l := c.registerRate
	if l == nil || c.Trusted(src) {
		return nil
	}
	ok, wait := l.allow(src)
	if ok {
		return nil
	}
	c.Stats.Limit(LimitRegisterRate)
	res := NewResponse(req, 503, "REGISTER Rate Limit Exceeded")
	res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(retryAfterSeconds(wait))))
	return res
}

// retryAfterSeconds rounds a wait up to whole seconds (Retry-After has no
// finer unit), at least 1: 0 would invite an immediate retry.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// countLocatorLimit counts a refusal by the Locator that is one of the
// location limits (locsvc names it in Error.Limit, also across gRPC).
func (c *Core) countLocatorLimit(e *locsvc.Error) {
	if e.Limit != "" {
		c.Stats.Limit(e.Limit)
	}
}

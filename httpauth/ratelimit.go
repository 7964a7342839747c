package httpauth

import (
	"net/http"
	"strconv"
	"time"

	"github.com/apitoken/apitoken"
)

// policyValue is a cached RateLimit-Policy header value: a one-element slice,
// read-only, shared by every response with that limit.
type policyValue struct {
	limit apitoken.Limit
	value []string
}

// maxPolicies bounds the cache of RateLimit-Policy values: a policy has a
// few limits, but per-token overrides can make many, whose values are then
// formatted per response.
const maxPolicies = 16

// rateLimitHeaders sets the RateLimit headers of d in h: RateLimit
// `"default";r=<remaining>;t=<seconds until one more request is
// available>` and RateLimit-Policy `"default";q=<burst>;w=<seconds to
// refill it>`. The RateLimit value goes into vals[0] when vals has room,
// else into a new slice.
func (m *Middleware) rateLimitHeaders(h http.Header, d apitoken.Decision, vals []string) {
	var buf [64]byte
	b := strconv.AppendInt(append(buf[:0], `"default";r=`...), int64(d.Remaining), 10)
	if len(vals) == 0 {
		vals = make([]string, 1)
	}
	vals[0] = string(strconv.AppendInt(append(b, ";t="...), ceilSeconds(nextRequest(d)), 10))
	h[canonicalRateLimitPolicy] = m.policy(d.Limit)
	h[canonicalRateLimit] = vals[0:1:1]
	if m.xRateLimit {
		reset := ceilSeconds(d.ResetAfter)
		x := []string{strconv.Itoa(d.Limit.Burst), strconv.Itoa(d.Remaining), strconv.FormatInt(reset, 10)}
		h[canonicalXRateLimitLimit] = x[0:1:1]
		h[canonicalXRateLimitRemaining] = x[1:2:2]
		h[canonicalXRateLimitReset] = x[2:3:3]
	}
}

// nextRequest returns how long after decision d one more request than
// d.Remaining is available: the RateLimit field's "t" (the draft's time
// until additional quota is made available; within it the client can use
// no more than d.Remaining). For a denied request it is d.RetryAfter, so
// the 429's Retry-After and t agree. For an allowed one the bucket, which
// is d.ResetAfter from full, lacks Burst-Remaining-1 whole requests after
// the next one, so the next one comes that many refill intervals before
// the bucket is full (clamped to [0, ResetAfter] for a limiter whose
// Remaining rounds otherwise).
func nextRequest(d apitoken.Decision) time.Duration {
	if !d.Allowed {
		return d.RetryAfter
	}
	if d.Limit.Rate <= 0 {
		return d.ResetAfter
	}
	interval := float64(time.Second) / float64(d.Limit.Rate)
	missing := max(0, d.Limit.Burst-d.Remaining-1)
	next := d.ResetAfter - time.Duration(float64(missing)*interval)
	return min(max(next, 0), d.ResetAfter)
}

// policy returns the RateLimit-Policy header value of l, as a one-element
// slice shared by every response with that limit (its capacity is 1, so an
// Add to the header copies it).
func (m *Middleware) policy(l apitoken.Limit) []string {
	var cached []policyValue
	old := m.policies.Load()
	if old != nil {
		cached = *old
	}
	for _, p := range cached {
		if p.limit == l {
			return p.value
		}
	}
	window := ceilSeconds(time.Duration(float64(l.Burst) / float64(l.Rate) * float64(time.Second)))
	b := strconv.AppendInt([]byte(`"default";q=`), int64(l.Burst), 10)
	v := []string{string(strconv.AppendInt(append(b, ";w="...), window, 10))}
	if len(cached) < maxPolicies {
		list := append([]policyValue{{l, v}}, cached...)
		m.policies.CompareAndSwap(old, &list) // losing a race only costs a later format
	}
	return v
}

// Canonical forms of the rate-limit header names, for direct map writes.
var (
	canonicalRateLimit           = http.CanonicalHeaderKey(HeaderRateLimit)
	canonicalRateLimitPolicy     = http.CanonicalHeaderKey(HeaderRateLimitPolicy)
	canonicalXRateLimitLimit     = http.CanonicalHeaderKey(HeaderXRateLimitLimit)
	canonicalXRateLimitRemaining = http.CanonicalHeaderKey(HeaderXRateLimitRemaining)
	canonicalXRateLimitReset     = http.CanonicalHeaderKey(HeaderXRateLimitReset)
)

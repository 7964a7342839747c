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
// `"default";r=<remaining>;t=<seconds until the bucket is full>` and
// RateLimit-Policy `"default";q=<burst>;w=<seconds to refill it>`. The
// RateLimit value goes into vals[0] when vals has room, else into a new
// slice.
func (m *Middleware) rateLimitHeaders(h http.Header, d apitoken.Decision, vals []string) {
	reset := ceilSeconds(d.ResetAfter)
	var buf [64]byte
	b := strconv.AppendInt(append(buf[:0], `"default";r=`...), int64(d.Remaining), 10)
	if len(vals) == 0 {
		vals = make([]string, 1)
	}
	vals[0] = string(strconv.AppendInt(append(b, ";t="...), reset, 10))
	h[canonicalRateLimitPolicy] = m.policy(d.Limit)
	h[canonicalRateLimit] = vals[0:1:1]
	if m.xRateLimit {
		x := []string{strconv.Itoa(d.Limit.Burst), strconv.Itoa(d.Remaining), strconv.FormatInt(reset, 10)}
		h[canonicalXRateLimitLimit] = x[0:1:1]
		h[canonicalXRateLimitRemaining] = x[1:2:2]
		h[canonicalXRateLimitReset] = x[2:3:3]
	}
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

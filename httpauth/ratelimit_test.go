package httpauth_test

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/httpauth"
)

// Checklist item 28: the RateLimit fields are Structured Field lists
// (RFC 9651), never in trailers; Retry-After is an integer ≥ 1 and ≥ the
// RateLimit field's t; a client that waits Retry-After is let through.

// sfItem is one member of a Structured Field list: a bare item and its
// parameters, in order. An inner list's members are in inner.
type sfItem struct {
	bare   any // int64, float64, sfString, sfToken, []byte, bool, time.Time, sfDisplay
	inner  []sfItem
	params []sfParam
}

type sfParam struct {
	key   string
	value any
}

type (
	sfString  string
	sfToken   string
	sfDisplay string
)

// parseSFList parses an HTTP field value as a Structured Field List, with
// the strict algorithm of RFC 9651 §4.2: anything it cannot parse, or any
// text left over, is an error, so the field would be ignored whole.
func parseSFList(v string) ([]sfItem, error) {
	p := &sfParser{s: strings.TrimLeft(v, " ")}
	var list []sfItem
	for !p.done() {
		it, err := p.member()
		if err != nil {
			return nil, err
		}
		list = append(list, it)
		p.ows()
		if p.done() {
			return list, nil
		}
		if p.next() != ',' {
			return nil, p.errf("want ',' after a list member")
		}
		p.ows()
		if p.done() {
			return nil, p.errf("trailing ','")
		}
	}
	return list, nil
}

type sfParser struct {
	s string
	i int
}

func (p *sfParser) done() bool { return p.i >= len(p.s) }

func (p *sfParser) peek() byte {
	if p.done() {
		return 0
	}
	return p.s[p.i]
}

func (p *sfParser) next() byte {
	c := p.peek()
	p.i++
	return c
}

func (p *sfParser) ows() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *sfParser) errf(format string, args ...any) error {
	return fmt.Errorf("at %d of %q: %s", p.i, p.s, fmt.Sprintf(format, args...))
}

func (p *sfParser) member() (sfItem, error) {
	if p.peek() != '(' {
		return p.item()
	}
	p.i++
	var it sfItem
	for {
		for p.peek() == ' ' {
			p.i++
		}
		if p.peek() == ')' {
			p.i++
			var err error
			it.params, err = p.parameters()
			return it, err
		}
		in, err := p.item()
		if err != nil {
			return it, err
		}
		it.inner = append(it.inner, in)
		if c := p.peek(); c != ' ' && c != ')' {
			return it, p.errf("want ' ' or ')' in an inner list")
		}
	}
}

func (p *sfParser) item() (sfItem, error) {
	b, err := p.bareItem()
	if err != nil {
		return sfItem{}, err
	}
	params, err := p.parameters()
	return sfItem{bare: b, params: params}, err
}

func (p *sfParser) parameters() ([]sfParam, error) {
	var params []sfParam
	for p.peek() == ';' {
		p.i++
		for p.peek() == ' ' {
			p.i++
		}
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		var v any = true
		if p.peek() == '=' {
			p.i++
			if v, err = p.bareItem(); err != nil {
				return nil, err
			}
		}
		params = append(params, sfParam{k, v})
	}
	return params, nil
}

func (p *sfParser) key() (string, error) {
	start := p.i
	if c := p.peek(); !(c >= 'a' && c <= 'z' || c == '*') {
		return "", p.errf("a key starts with lcalpha or '*'")
	}
	for c := p.peek(); c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c != 0 && strings.IndexByte("_-.*", c) >= 0; c = p.peek() {
		p.i++
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) bareItem() (any, error) {
	switch c := p.peek(); {
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == '"':
		s, err := p.str()
		return sfString(s), err
	case c == '*' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
		start := p.i
		for c := p.peek(); c > ' ' && c < 0x7f && (isTChar(c) || c == ':' || c == '/'); c = p.peek() {
			p.i++
		}
		return sfToken(p.s[start:p.i]), nil
	case c == ':':
		p.i++
		end := strings.IndexByte(p.s[p.i:], ':')
		if end < 0 {
			return nil, p.errf("unterminated byte sequence")
		}
		b, err := base64.StdEncoding.DecodeString(p.s[p.i : p.i+end])
		p.i += end + 1
		return b, err
	case c == '?':
		p.i++
		switch p.next() {
		case '0':
			return false, nil
		case '1':
			return true, nil
		}
		return nil, p.errf("bad boolean")
	case c == '@':
		p.i++
		n, err := p.number()
		if i, ok := n.(int64); err == nil && ok {
			return time.Unix(i, 0), nil
		}
		return nil, p.errf("bad date")
	case c == '%':
		p.i++
		if p.peek() != '"' {
			return nil, p.errf("bad display string")
		}
		s, err := p.str()
		return sfDisplay(s), err
	}
	return nil, p.errf("no bare item")
}

func isTChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// number parses an Integer (at most 15 digits) or a Decimal (at most 12
// integer and 3 fractional digits).
func (p *sfParser) number() (any, error) {
	start := p.i
	if p.peek() == '-' {
		p.i++
	}
	digits, dot := 0, -1
	for c := p.peek(); c >= '0' && c <= '9' || c == '.' && dot < 0; c = p.peek() {
		if c == '.' {
			if digits > 12 || digits == 0 {
				return nil, p.errf("bad decimal")
			}
			dot = digits
		} else {
			digits++
		}
		p.i++
	}
	text := p.s[start:p.i]
	switch {
	case digits == 0:
		return nil, p.errf("no digits")
	case dot < 0 && digits > 15:
		return nil, p.errf("integer too long")
	case dot < 0:
		return strconv.ParseInt(text, 10, 64)
	case digits-dot < 1 || digits-dot > 3:
		return nil, p.errf("bad decimal fraction")
	}
	return strconv.ParseFloat(text, 64)
}

// str parses a String: printable ASCII, with \" and \\ the only escapes.
func (p *sfParser) str() (string, error) {
	p.i++ // the quote
	var b strings.Builder
	for !p.done() {
		c := p.next()
		switch {
		case c == '\\':
			if e := p.next(); e == '"' || e == '\\' {
				b.WriteByte(e)
				continue
			}
			return "", p.errf("bad escape")
		case c == '"':
			return b.String(), nil
		case c < 0x20 || c > 0x7e:
			return "", p.errf("byte %#x in a string", c)
		}
		b.WriteByte(c)
	}
	return "", p.errf("unterminated string")
}

func TestParseSFList(t *testing.T) {
	good := map[string]int{
		`"default";r=0;t=60`:                                          1,
		`"burst";q=100;w=60,"daily";q=1000;w=86400`:                   2,
		`"peruser";q=65535;qu="content-bytes";w=10;pk=:sdfjLJUOUH==:`: 1,
		`a;b=?1, (1 2.5 "x");k=@1659578233, %"caf%c3%a9"`:             3,
		`   tok/x:y , -42`:                                            2,
	}
	for v, n := range good {
		list, err := parseSFList(v)
		require.NoError(t, err, v)
		assert.Len(t, list, n, v)
	}
	for _, v := range []string{
		`"default";r=-`, `"default";R=1`, `"default";r=1,`, `"default" "x"`, `"unterminated`,
		`"default";r=1.`, `"default";r=1234567890123456`, `"default";r=1.2345`, `"a\x"`, `"default";t=60 x`,
		`"é"`, `,`, `"default";;r=1`, `?2`, `:!!:`,
	} {
		_, err := parseSFList(v)
		assert.Error(t, err, "%q parsed", v)
	}
}

// rateLimitFields checks the RateLimit and RateLimit-Policy fields of h:
// each a one-member List of the String "default" whose parameters are the
// draft's, non-negative Integers, and nothing else. It returns r, t, q and w.
func rateLimitFields(t *testing.T, h http.Header) (r, tt, q, w int64) {
	t.Helper()
	field := func(name string, keys ...string) map[string]int64 {
		vals := h.Values(name)
		require.Len(t, vals, 1, "%s lines", name)
		list, err := parseSFList(vals[0])
		require.NoError(t, err, "%s: %s", name, vals[0])
		require.Len(t, list, 1, "%s: %s", name, vals[0])
		require.Equal(t, sfString("default"), list[0].bare, "%s: %s", name, vals[0])
		got := map[string]int64{}
		for _, p := range list[0].params {
			n, ok := p.value.(int64)
			require.True(t, ok, "%s: parameter %s is %T, want an Integer", name, p.key, p.value)
			require.GreaterOrEqual(t, n, int64(0), "%s: parameter %s", name, p.key)
			got[p.key] = n
		}
		require.Len(t, got, len(keys), "%s: %s: want exactly %v", name, vals[0], keys)
		for _, k := range keys {
			require.Contains(t, got, k, "%s: %s", name, vals[0])
		}
		return got
	}
	rl, pol := field(httpauth.HeaderRateLimit, "r", "t"), field(httpauth.HeaderRateLimitPolicy, "q", "w")
	require.Positive(t, pol["w"], "RateLimit-Policy w must be positive")
	return rl["r"], rl["t"], pol["q"], pol["w"]
}

// retryAfter returns the delay-seconds of h's Retry-After, failing the
// test unless it is one line of digits, at least 1.
func retryAfter(t *testing.T, h http.Header) int64 {
	t.Helper()
	vals := h.Values(httpauth.HeaderRetryAfter)
	require.Len(t, vals, 1, "Retry-After lines")
	v := vals[0]
	require.NotEmpty(t, v)
	require.Equal(t, -1, strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' }), "Retry-After %q: want delay-seconds", v)
	n, err := strconv.ParseInt(v, 10, 64)
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, int64(1), "Retry-After")
	return n
}

// TestRateLimitHeaders drives one token per limit through random waits
// (a fake clock): every response's RateLimit fields parse as Structured
// Fields with integer r, t ≥ 0, q and w; every 429 has Retry-After ≥ 1
// and ≥ t; a client that waits exactly Retry-After is let through, and
// one that waits a second less is not; after a 200 with r, t, waiting t
// leaves at least r+1 requests; and waiting t after the last request of
// the bucket lets the next one through.
func TestRateLimitHeaders(t *testing.T) {
	limits := []apitoken.Limit{
		{Rate: apitoken.Per(1, time.Minute), Burst: 2},
		{Rate: apitoken.Per(3, 7*time.Second), Burst: 4},
		{Rate: 10, Burst: 1},
		{Rate: 0.3, Burst: 3},
		{Rate: apitoken.Per(1, time.Hour), Burst: 5},
		{Rate: 2.5, Burst: 50},
	}
	for _, limit := range limits {
		t.Run(limit.String(), func(t *testing.T) {
			pol := testPolicy()
			pol.OrgRateLimit = limit
			m := newMW(t, pol)
			tok, _ := m.issue(t, orgSpec())
			rng := rand.New(rand.NewPCG(28, uint64(limit.Burst)))
			interval := time.Duration(float64(time.Second) / float64(limit.Rate))
			denied, waited := 0, 0
			for i := range 300 {
				w := m.do("GET", "Bearer "+tok)
				require.Contains(t, []int{200, 429}, w.Code, "request %d", i)
				r, tt, q, win := rateLimitFields(t, w.Header())
				assert.Equal(t, int64(limit.Burst), q, "q")
				assert.InDelta(t, float64(limit.Burst)*interval.Seconds(), float64(win), 1, "w")
				assert.LessOrEqual(t, r, int64(limit.Burst), "r")
				assert.LessOrEqual(t, time.Duration(tt)*time.Second, interval+time.Second, "t is at most one refill")
				if w.Code == 429 {
					denied++
					assert.Zero(t, r, "r on a 429")
					ra := retryAfter(t, w.Header())
					require.GreaterOrEqual(t, ra, tt, "Retry-After %d < t %d", ra, tt)
					if rng.IntN(2) == 0 { // a client that waits a second less is still refused
						m.clock.Advance(time.Duration(ra-1) * time.Second)
						require.Equal(t, 429, m.do("GET", "Bearer "+tok).Code, "after Retry-After - 1 s")
						m.clock.Advance(time.Second)
					} else {
						m.clock.Advance(time.Duration(ra) * time.Second)
					}
					w = m.do("GET", "Bearer "+tok)
					require.Equal(t, 200, w.Code, "request %d: after waiting Retry-After %d s", i, ra)
					waited++
					continue
				}
				assert.Empty(t, w.Header().Values(httpauth.HeaderRetryAfter), "Retry-After on a 200")
				switch rng.IntN(4) {
				case 0: // wait t: at least one more request than r
					m.clock.Advance(time.Duration(tt) * time.Second)
					for range r + 1 {
						require.Equal(t, 200, m.do("GET", "Bearer "+tok).Code, "within r+1 after waiting t=%d after r=%d", tt, r)
					}
				case 1:
					m.clock.Advance(time.Duration(rng.Int64N(int64(2 * interval))))
				}
			}
			assert.Positive(t, denied, "429s seen")
			assert.Equal(t, denied, waited)
		})
	}
}

// The RateLimit fields are header fields, never trailers: through a real
// server, on a 200 whose handler streams its body and on a 429.
func TestRateLimitFieldsNotTrailers(t *testing.T) {
	pol := testPolicy()
	pol.OrgRateLimit = apitoken.Limit{Rate: apitoken.Per(1, time.Minute), Burst: 1}
	m := newMW(t, pol)
	tok, _ := m.issue(t, orgSpec())
	auth := m.mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(200)
		fmt.Fprint(w, "part 1")
		w.(http.Flusher).Flush()
		fmt.Fprint(w, "part 2")
		w.Header().Set("X-Checksum", "abc")
	}))
	mux := http.NewServeMux()
	mux.Handle("/devices/{id}", auth)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, want := range []int{200, 429} {
		req, err := http.NewRequest("GET", srv.URL+"/devices/1", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Org", "org_1")
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		_, err = resp.Body.Read(make([]byte, 64))
		for err == nil {
			_, err = resp.Body.Read(make([]byte, 64))
		}
		resp.Body.Close()
		require.Equal(t, want, resp.StatusCode)
		rateLimitFields(t, resp.Header)
		for name := range resp.Trailer {
			assert.NotContains(t, []string{"Ratelimit", "Ratelimit-Policy", "Retry-After"}, name, "a trailer on the %d", want)
		}
		assert.NotContains(t, strings.ToLower(strings.Join(resp.Header.Values("Trailer"), ",")), "ratelimit")
		if want == 429 {
			retryAfter(t, resp.Header)
		} else {
			assert.Equal(t, "abc", resp.Trailer.Get("X-Checksum"), "the handler's own trailer")
		}
	}
}

// The client's budget of failed authentications answers 429 with
// Retry-After ≥ 1 and no RateLimit fields (they describe a token's limit);
// waiting Retry-After gives the next failure a lookup again.
func TestThrottleRetryAfter(t *testing.T) {
	m := newMW(t, testPolicy(), httpauth.WithFailureLimit(apitoken.Limit{Rate: apitoken.Per(2, 5*time.Second), Burst: 2}))
	forged := forge(t, "acme", 4)
	for i := range 2 {
		require.Equal(t, 401, m.do("GET", "Bearer "+forged[i]).Code)
	}
	w := m.do("GET", "Bearer "+forged[2])
	require.Equal(t, 429, w.Code)
	ra := retryAfter(t, w.Header())
	assert.Equal(t, int64(3), ra, "2.5 s rounded up")
	assert.Empty(t, w.Header().Values(httpauth.HeaderRateLimit))
	m.clock.Advance(time.Duration(ra) * time.Second)
	lookups := m.store.lookups.Load()
	assert.Equal(t, 401, m.do("GET", "Bearer "+forged[3]).Code, "after Retry-After")
	assert.Equal(t, lookups+1, m.store.lookups.Load())
}

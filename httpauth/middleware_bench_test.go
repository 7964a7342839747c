package httpauth_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/httpauth"
	"github.com/apitoken/apitoken/internal/benchtokens"
)

var benchKey = []byte("bench-key-bench-key-bench-key-32")

// benchTokens returns n issued tokens behind a Validator (memstore, local
// limiter with a limit that never denies), the same as the root package's
// validator benchmarks use (internal/benchtokens).
func benchTokens(b *testing.B, n int) *benchtokens.Set {
	req := apitoken.Request{IP: officeIP, Org: "org_1", API: "devices", Access: apitoken.AccessRead}
	return benchtokens.Get(b, n, benchtokens.Config{Policy: testPolicy(), Spec: orgSpec(), HashKey: benchKey, Request: req})
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "ok")
})

// benchMiddleware is the middleware as the benchmarks run it: the
// defaults (failure budget on, credential removed), a fixed org and API.
func benchMiddleware(b *testing.B, v *apitoken.Validator) *httpauth.Middleware {
	m, err := httpauth.New(v, httpauth.WithOrg(func(*http.Request) string { return "org_1" }), httpauth.WithAPIName("devices"))
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkMiddleware measures a request through the middleware (memstore,
// local limiter on) against the bare handler, through httptest recorders.
// Target: middleware − bare ≤ 1.5 µs per request. (The same names as the
// root package's BenchmarkMiddleware had, for benchstat -ignore pkg.)
func BenchmarkMiddleware(b *testing.B) {
	for _, n := range []int{1, 1_000_000} {
		ord := benchtokens.Order(n)
		for _, protected := range []bool{false, true} {
			name := "tokens=" + strconv.Itoa(n) + "/bare"
			if protected {
				name = "tokens=" + strconv.Itoa(n) + "/middleware"
			}
			b.Run(name, func(b *testing.B) {
				s := benchTokens(b, n)
				h := http.Handler(okHandler)
				if protected {
					h = benchMiddleware(b, s.Validator).Wrap(okHandler)
				}
				auth := make([][]string, len(ord))
				for i, j := range ord {
					auth[i] = []string{"Bearer " + s.Secrets[j]}
				}
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					r := httptest.NewRequest("GET", "/devices/1", nil)
					r.RemoteAddr = "10.1.2.3:4567"
					i := int(benchSeed.Add(7919))
					for pb.Next() {
						r.Header["Authorization"] = auth[i&0xFFFF]
						w := httptest.NewRecorder()
						h.ServeHTTP(w, r)
						if w.Code != 200 {
							b.Errorf("status %d", w.Code)
							return
						}
						i++
					}
				})
			})
		}
	}
}

var benchSeed atomic.Int64

// BenchmarkMiddlewareLoopback is the same over a real loopback server and
// keep-alive clients; compare the ns/op (inverse throughput) of bare and
// middleware. Target: middleware throughput ≥ 0.9× bare.
func BenchmarkMiddlewareLoopback(b *testing.B) {
	for _, protected := range []bool{false, true} {
		name := "bare"
		if protected {
			name = "middleware"
		}
		b.Run(name, func(b *testing.B) {
			s := benchTokens(b, 1_000_000)
			ord := benchtokens.Order(len(s.Secrets))
			h := http.Handler(okHandler)
			if protected {
				h = benchMiddleware(b, s.Validator).Wrap(okHandler)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			b.ReportAllocs()
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req, _ := http.NewRequest("GET", srv.URL+"/devices/1", nil)
				i := int(benchSeed.Add(7919))
				for pb.Next() {
					req.Header.Set("Authorization", "Bearer "+s.Secrets[ord[i&0xFFFF]])
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
					i++
				}
			})
		})
	}
}

// BenchmarkClientIP measures each source on a request through two proxies.
func BenchmarkClientIP(b *testing.B) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.1:80"
	r.Header["X-Forwarded-For"] = []string{"198.51.100.7, 10.0.0.2"}
	r.Header["Forwarded"] = []string{`for=198.51.100.7;proto=https, for=10.0.0.2`}
	r.Header["X-Real-Ip"] = []string{"198.51.100.7"}
	for _, h := range []string{"", "X-Forwarded-For", "Forwarded", "X-Real-IP"} {
		name := h
		if h == "" {
			name = "peer"
		}
		b.Run(name, func(b *testing.B) {
			s := source(b, h)
			b.ReportAllocs()
			for b.Loop() {
				s.ClientIP(r)
			}
		})
	}
}

package apitoken_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/apitoken/apitoken"
)

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "ok")
})

// BenchmarkMiddleware measures a request through the middleware (memstore,
// local limiter on) against the bare handler, through httptest recorders.
// Target: middleware − bare ≤ 1.5 µs per request.
func BenchmarkMiddleware(b *testing.B) {
	for _, n := range []int{1, 1_000_000} {
		ord := order(n)
		for _, protected := range []bool{false, true} {
			name := "tokens=" + strconv.Itoa(n) + "/bare"
			if protected {
				name = "tokens=" + strconv.Itoa(n) + "/middleware"
			}
			b.Run(name, func(b *testing.B) {
				s := benchTokens(b, n)
				h := http.Handler(okHandler)
				if protected {
					h = apitoken.Middleware(s.v, apitoken.WithOrg(func(*http.Request) string { return "org_1" }))(okHandler)
				}
				auth := make([][]string, len(ord))
				for i, j := range ord {
					auth[i] = []string{"Bearer " + s.secrets[j]}
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
			ord := order(len(s.secrets))
			h := http.Handler(okHandler)
			if protected {
				h = apitoken.Middleware(s.v, apitoken.WithOrg(func(*http.Request) string { return "org_1" }),
					apitoken.WithTrustedProxies())(okHandler)
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
					req.Header.Set("Authorization", "Bearer "+s.secrets[ord[i&0xFFFF]])
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

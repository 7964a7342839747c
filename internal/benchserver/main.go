// Command benchserver serves one handler bare and behind the httpauth
// middleware (memory store, local limiter on, many tokens), for load tests
// with wrk: scripts/bench-wrk drives it. It writes the tokens' plaintexts to
// a file for the load generator, so use it only on test data.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof" // served only with -pprof, on its own address
	"os"
	"runtime"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/httpauth"
	"github.com/apitoken/apitoken/stores/memstore"
)

func main() {
	n := flag.Int("tokens", 1_000_000, "number of tokens to issue")
	bare := flag.String("bare", "127.0.0.1:18080", "address of the bare handler")
	protected := flag.String("protected", "127.0.0.1:18081", "address of the protected handler")
	floorAddr := flag.String("floor", "127.0.0.1:18082", "address of the handler behind the floor middleware (see floor.go)")
	out := flag.String("out", "tokens.txt", "file to write the tokens to")
	pprofAddr := flag.String("pprof", "", "address for net/http/pprof (off when empty)")
	limit := flag.Bool("limit", true, "rate-limit requests (local limiter, a limit never reached)")
	flag.Parse()

	ctx := context.Background()
	pol := apitoken.Policy{
		Prefix: "bench",
		Roles:  map[string]apitoken.Role{"reader": {Grants: apitoken.Grants{"devices": apitoken.AccessRead}}},
	}
	var vopts []apitoken.ValidatorOption
	if *limit {
		pol.OrgRateLimit = apitoken.Limit{Rate: 1e9, Burst: 1e9}
		vopts = append(vopts, apitoken.WithLimiter(apitoken.NewLocalLimiter()))
	}
	key := []byte("benchserver-key-benchserver-key-")
	store := memstore.New()
	iss, err := apitoken.NewIssuer(store, pol, apitoken.WithHashKeys(key))
	check(err)
	v, err := apitoken.NewValidator(store, pol, append(vopts, apitoken.WithHashKeys(key))...)
	check(err)
	defer v.Close(ctx)

	f, err := os.Create(*out)
	check(err)
	w := bufio.NewWriter(f)
	fl := newFloor(key, *n)
	start := time.Now()
	for i := range *n {
		s, _, err := iss.Issue(ctx, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: fmt.Sprint("t", i), Roles: []string{"reader"}})
		check(err)
		fmt.Fprintln(w, s.Reveal())
		fl.add(s.Reveal())
	}
	check(w.Flush())
	check(f.Close())
	runtime.GC()
	log.Printf("issued %d tokens in %v", *n, time.Since(start).Round(time.Millisecond))

	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok")
	})
	// The defaults (failure budget on, credential removed), as hosts get
	// them; no ServeMux here, so the API is named.
	mw, err := httpauth.New(v, httpauth.WithOrg(func(r *http.Request) string { return r.Header.Get("X-Org") }),
		httpauth.WithAPIName("devices"))
	check(err)
	// Bind every address before saying ready, so a load generator never
	// reaches another process still holding a port.
	serve := func(addr string, h http.Handler) {
		ln, err := net.Listen("tcp", addr)
		check(err)
		go func() { check(http.Serve(ln, h)) }()
	}
	serve(*bare, ok)
	serve(*protected, mw.Wrap(ok))
	fl.next = ok
	serve(*floorAddr, fl)
	if *pprofAddr != "" {
		serve(*pprofAddr, http.DefaultServeMux)
	}
	log.Printf("ready: bare on %s, protected on %s, floor on %s", *bare, *protected, *floorAddr)
	select {}
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

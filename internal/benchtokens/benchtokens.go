// Package benchtokens builds the token sets the benchmarks of the root and
// httpauth packages validate: n issued tokens behind one Validator on a
// memory store with a local limiter that never denies, built once per size
// and kept until the test binary ends. [Main] closes them and checks that
// no goroutine is left.
package benchtokens

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
)

// A Set is n issued tokens and the Validator that knows them.
type Set struct {
	Validator *apitoken.Validator
	Secrets   []string          // the plaintexts, in issue order
	Tokens    []*apitoken.Token // their records, in the same order
}

// Config is what a package's benchmarks issue and validate.
type Config struct {
	// Policy is the services' policy; its OrgRateLimit is raised so that
	// no validation is ever denied.
	Policy apitoken.Policy
	// Spec is every token's (each named "t<i>").
	Spec    apitoken.Spec
	HashKey []byte
	// Request validates every token once, to warm the limiter.
	Request apitoken.Request
}

var (
	mu   sync.Mutex
	sets = map[int]*Set{}
)

// Get returns the set of n tokens, issuing it on first use. Every call in
// one test binary passes the same Config.
func Get(b testing.TB, n int, c Config) *Set {
	b.Helper()
	mu.Lock()
	defer mu.Unlock()
	if s := sets[n]; s != nil {
		return s
	}
	ctx := context.Background()
	pol := c.Policy
	pol.OrgRateLimit = apitoken.Limit{Rate: 1e9, Burst: 1e9}
	store := memstore.New()
	iss, err := apitoken.NewIssuer(store, pol, apitoken.WithHashKeys(c.HashKey))
	if err != nil {
		b.Fatal(err)
	}
	v, err := apitoken.NewValidator(store, pol, apitoken.WithHashKeys(c.HashKey), apitoken.WithLimiter(apitoken.NewLocalLimiter()))
	if err != nil {
		b.Fatal(err)
	}
	s := &Set{Validator: v, Secrets: make([]string, n), Tokens: make([]*apitoken.Token, n)}
	spec := c.Spec
	for i := range n {
		spec.Name = "t" + strconv.Itoa(i)
		sec, tok, err := iss.Issue(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		s.Secrets[i], s.Tokens[i] = sec.Reveal(), tok
		if _, err := v.Validate(ctx, s.Secrets[i], c.Request); err != nil {
			b.Fatal(err)
		}
	}
	sets[n] = s
	return s
}

// Order returns a fixed pseudo-random visiting order over n tokens: 65,536
// indexes (mask a counter with 0xFFFF).
func Order(n int) []int32 {
	r := rand.New(rand.NewPCG(1, 2))
	o := make([]int32, 1<<16)
	for i := range o {
		o[i] = int32(r.IntN(n))
	}
	return o
}

// Main is a package's TestMain: it runs m, closes every Set's Validator
// (after the last benchmark), and fails the run if a goroutine the tests
// started is still running (goleak): every Validator, store and server
// they build must be closed.
func Main(m *testing.M) {
	code := m.Run()
	mu.Lock()
	for _, s := range sets {
		s.Validator.Close(context.Background())
	}
	mu.Unlock()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

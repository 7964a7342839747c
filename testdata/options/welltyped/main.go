// Command welltyped passes each service its own options and the shared
// ones; TestOptionsAreCheckedByTheCompiler builds it.
package main

import (
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
)

func main() {
	store, pol := memstore.New(), apitoken.Policy{}
	keys := apitoken.WithHashKeys(make([]byte, 32))
	_, _ = apitoken.NewIssuer(store, pol, keys, apitoken.WithClock(time.Now), apitoken.WithLogger(nil))
	v, _ := apitoken.NewValidator(store, pol, keys, apitoken.WithClock(time.Now), apitoken.WithFlushInterval(time.Second))
	_, _ = apitoken.NewPruner(store, pol, apitoken.WithClock(time.Now), apitoken.WithFlushFirst(v), apitoken.WithBatchSize(10))
}

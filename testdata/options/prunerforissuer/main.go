// Command prunerforissuer passes a Pruner option to NewIssuer: it must not
// compile (TestOptionsAreCheckedByTheCompiler).
package main

import (
	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
)

func main() {
	_, _ = apitoken.NewIssuer(memstore.New(), apitoken.Policy{}, apitoken.WithBatchSize(10))
}

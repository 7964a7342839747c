package memstore_test

import (
	"testing"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
	"github.com/apitoken/apitoken/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) apitoken.Store { return memstore.New() })
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(*testing.B) apitoken.Store { return memstore.New() })
}

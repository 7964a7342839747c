package apitoken

import (
	"bytes"
	"math/rand"
	"reflect"
	"sync/atomic"
	"testing"
	"testing/quick"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEqualMatchesBytesEqual: the constant-time helper equal agrees with
// bytes.Equal on 100,000 pairs of hashes (checklist item 9). Random pairs
// are almost never equal, so a third of the pairs are equal and a third
// differ in one bit at a random position (first and last bytes included).
func TestEqualMatchesBytesEqual(t *testing.T) {
	t.Parallel()
	const pairs = 100_000
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	var same, oneBit atomic.Int64
	cfg := &quick.Config{
		MaxCount: pairs,
		Rand:     rand.New(rand.NewSource(seed)),
		Values: func(args []reflect.Value, r *rand.Rand) {
			var a, b Hash
			r.Read(a[:])
			switch r.Intn(3) {
			case 0:
				b = a
				same.Add(1)
			case 1:
				b = a
				b[r.Intn(len(b))] ^= 1 << r.Intn(8)
				oneBit.Add(1)
			default:
				r.Read(b[:])
			}
			args[0], args[1] = reflect.ValueOf(a), reflect.ValueOf(b)
		},
	}
	err := quick.CheckEqual(
		func(a, b Hash) bool { return equal(a, b) },
		func(a, b Hash) bool { return bytes.Equal(a[:], b[:]) },
		cfg)
	require.NoError(t, err, "equal differs from bytes.Equal")
	// CheckEqual draws the arguments once per pair and feeds both functions.
	assert.Greater(t, same.Load(), int64(pairs/4), "equal pairs")
	assert.Greater(t, oneBit.Load(), int64(pairs/4), "pairs one bit apart")
	t.Logf("%d pairs: %d equal, %d one bit apart, the rest random; equal agrees with bytes.Equal on all", pairs, same.Load(), oneBit.Load())
}

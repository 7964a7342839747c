package memstore

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/apitoken/apitoken"
)

// reachable reports whether probing from h's home position finds the entry
// (h, slot) before an empty entry, which is what lookups rely on.
func reachable(x *index, h *apitoken.Hash, slot uint32) bool {
	key, mask := indexKey(h), uint64(len(x.entries)-1)
	for i := key & mask; x.entries[i].slot != 0; i = (i + 1) & mask {
		if x.entries[i] == (entry{key: key, slot: slot + 1}) {
			return true
		}
	}
	return false
}

// TestIndexAgainstMap adds and removes random entries whose keys crowd into
// few home positions (long runs that wrap around the table's end), and
// checks after every step that each entry is still reachable.
func TestIndexAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var x index
	type pair struct {
		h    apitoken.Hash
		slot uint32
	}
	var live []pair
	hash := func() apitoken.Hash {
		var h apitoken.Hash
		// Keys near the table's end and a few distinct homes.
		binary.LittleEndian.PutUint64(h[:8], uint64(1020+rng.IntN(8))+uint64(rng.IntN(3))<<32)
		h[8] = byte(rng.Uint32()) | 1
		return h
	}
	for step := range 8_000 {
		if len(live) == 0 || rng.IntN(5) < 3 {
			p := pair{hash(), uint32(step)}
			x.add(&p.h, p.slot)
			live = append(live, p)
		} else {
			i := rng.IntN(len(live))
			p := live[i]
			x.remove(&p.h, p.slot)
			live[i] = live[len(live)-1]
			live = live[:len(live)-1]
			if reachable(&x, &p.h, p.slot) {
				t.Fatalf("step %d: removed entry still reachable", step)
			}
		}
		if x.n != len(live) {
			t.Fatalf("step %d: n = %d, want %d", step, x.n, len(live))
		}
		if step%251 == 0 || len(live) < 50 {
			for _, p := range live {
				if !reachable(&x, &p.h, p.slot) {
					t.Fatalf("step %d: entry (%x…, %d) unreachable", step, p.h[:8], p.slot)
				}
			}
		}
	}
	// Removing an absent entry changes nothing.
	n := x.n
	h := hash()
	x.remove(&h, 1<<30)
	if x.n != n {
		t.Errorf("removing an absent entry changed n from %d to %d", n, x.n)
	}
}

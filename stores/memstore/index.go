package memstore

import (
	"encoding/binary"

	"github.com/apitoken/apitoken"
)

// index maps token hashes (Hash and PrevHash) to slots: an open-addressing
// table with linear probing in one pointer-free slice, so a lookup usually
// reads one cache line. Token hashes are HMAC or SHA-256 outputs, uniform
// and not chosen by clients, so their first 8 bytes serve as the table's
// hash; the caller confirms a match against the record's full hash.
// Deletion shifts entries back instead of leaving tombstones. Not safe for
// concurrent use: the Store's lock guards it.
type index struct {
	entries []entry // a power of two long, at most 3/4 full
	n       int
}

type entry struct {
	key  uint64 // the hash's first 8 bytes
	slot uint32 // slot + 1; 0 marks an empty entry
}

func indexKey(h *apitoken.Hash) uint64 { return binary.LittleEndian.Uint64(h[:8]) }

// slotOf returns the slot of the token whose Hash or PrevHash is h. The
// caller holds s.mu.
func (s *Store) slotOf(h *apitoken.Hash) (uint32, bool) {
	x := &s.byHash
	if len(x.entries) == 0 || h.IsZero() {
		return 0, false
	}
	key, mask := indexKey(h), uint64(len(x.entries)-1)
	for i := key & mask; ; i = (i + 1) & mask {
		e := x.entries[i]
		if e.slot == 0 {
			return 0, false
		}
		if e.key == key {
			if r := &s.recs[e.slot-1]; r.hash == *h || r.prevHash == *h {
				return e.slot - 1, true
			}
		}
	}
}

// add maps h to slot.
func (x *index) add(h *apitoken.Hash, slot uint32) {
	if (x.n+1)*4 > len(x.entries)*3 {
		x.grow()
	}
	x.place(entry{key: indexKey(h), slot: slot + 1})
	x.n++
}

func (x *index) place(e entry) {
	mask := uint64(len(x.entries) - 1)
	i := e.key & mask
	for x.entries[i].slot != 0 {
		i = (i + 1) & mask
	}
	x.entries[i] = e
}

func (x *index) grow() {
	old := x.entries
	x.entries = make([]entry, max(2*len(old), 1024))
	for _, e := range old {
		if e.slot != 0 {
			x.place(e)
		}
	}
}

// remove deletes the entry mapping h to slot, if there is one. (Were a
// token's Hash and PrevHash to share their first 8 bytes, its two entries
// would be equal, and removing either one is right.)
func (x *index) remove(h *apitoken.Hash, slot uint32) {
	if len(x.entries) == 0 {
		return
	}
	key, mask := indexKey(h), uint64(len(x.entries)-1)
	i := key & mask
	for x.entries[i] != (entry{key: key, slot: slot + 1}) {
		if x.entries[i].slot == 0 {
			return
		}
		i = (i + 1) & mask
	}
	// Shift back every following entry of the run that may move to i.
	for j := (i + 1) & mask; x.entries[j].slot != 0; j = (j + 1) & mask {
		home := x.entries[j].key & mask
		// The entry at j may fill the hole at i unless its home lies
		// cyclically in (i, j].
		if (j-home)&mask >= (j-i)&mask {
			x.entries[i] = x.entries[j]
			i = j
		}
	}
	x.entries[i] = entry{}
	x.n--
}

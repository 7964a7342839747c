package apitoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"hash"
	"slices"
	"sync"
)

// Hash is the stored digest of a token: HMAC-SHA256 under the current hash
// key, or SHA-256 when no key is configured. It is not secret, but it is
// never shown to users or put in errors.
type Hash [sha256.Size]byte

// IsZero reports whether h is the zero hash (no hash).
func (h Hash) IsZero() bool { return h == Hash{} }

// MinHashKeyLen is the shortest hash or seal key accepted, in bytes.
const MinHashKeyLen = 32

// hasher hashes tokens under a key ring: keys[0] is current, the rest are
// older keys that still validate. With no keys it uses plain SHA-256.
type hasher struct {
	pools []*sync.Pool // one per key; a single unkeyed pool without keys
}

// hashState is one pooled hash. Between uses it holds nothing of the last
// input: see wipe.
type hashState struct {
	h     hash.Hash
	keyed bool
	buf   [MaxTokenLen]byte
	sum   [sha256.Size]byte
}

func newHasher(keys [][]byte) *hasher {
	if len(keys) == 0 {
		return &hasher{pools: []*sync.Pool{{New: func() any { return &hashState{h: sha256.New()} }}}}
	}
	hs := &hasher{}
	for _, k := range keys {
		k := slices.Clone(k)
		hs.pools = append(hs.pools, &sync.Pool{New: func() any {
			h := hmac.New(sha256.New, k)
			h.Reset() // from now on Reset restores a saved keyed state, buffer included
			return &hashState{h: h, keyed: true}
		}})
	}
	return hs
}

// hash returns the hash of s (at most MaxTokenLen bytes) without allocating,
// and wipes the state.
func (st *hashState) hash(s string) Hash {
	n := copy(st.buf[:], s)
	st.h.Write(st.buf[:n])
	clear(st.buf[:n])
	var out Hash
	copy(out[:], st.h.Sum(st.sum[:0]))
	st.wipe()
	return out
}

// wipe resets the hash and overwrites the input it buffered (up to a block,
// the tail of a token), so a pooled state keeps no secret in memory. A keyed
// state's Reset restores the saved state after the key block, buffer
// included; a plain SHA-256 Reset only forgets the buffer's length, so a
// block of zeros overwrites it first.
func (st *hashState) wipe() {
	if !st.keyed {
		st.h.Write(zeroBlock[:])
	}
	st.h.Reset()
}

var zeroBlock [sha256.BlockSize]byte

// keys returns the number of keys in the ring (1 when unkeyed).
func (hs *hasher) keys() int { return len(hs.pools) }

// sum hashes s (at most MaxTokenLen bytes) under key i without allocating.
func (hs *hasher) sum(i int, s string) Hash {
	st := hs.pools[i].Get().(*hashState)
	out := st.hash(s)
	hs.pools[i].Put(st)
	return out
}

// equal compares two hashes in constant time.
func equal(a, b Hash) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }

package apitoken

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// TestCRC32IEEE: the slicing-by-8 CRC equals hash/crc32 for every length.
func TestCRC32IEEE(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for n := range 100 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if got, want := crc32IEEE(string(b)), crc32.ChecksumIEEE(b); got != want {
			t.Fatalf("crc32IEEE(%x) = %08x, want %08x", b, got, want)
		}
	}
}

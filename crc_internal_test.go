package apitoken

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
	"unsafe"
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

// BenchmarkChecksum compares the hand-written slicing-by-8 CRC with
// hash/crc32 on a zero-copy view of the same 30-byte token body, the one
// input the hot path checksums. The package keeps whichever is faster: the
// slicing-by-8 (medians of 6, 2-vCPU AMD EPYC, Go 1.26: 14.4 ns against
// 17.7 ns; crc32's assembly pays its setup on so short an input).
func BenchmarkChecksum(b *testing.B) {
	body := "t21wQ5AdGUy2dAh9QqP9ZFvbADX8uT"
	var sink uint32
	b.Run("slicing-by-8", func(b *testing.B) {
		for b.Loop() {
			sink += crc32IEEE(body)
		}
	})
	b.Run("hash-crc32", func(b *testing.B) {
		for b.Loop() {
			sink += crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(body), len(body)))
		}
	})
	_ = sink
}

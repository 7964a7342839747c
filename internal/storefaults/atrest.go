package storefaults

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
)

// WindowLen is the length of the pieces of a secret body searched for in a
// store's raw bytes: no 12 consecutive characters of a body may be there.
const WindowLen = 12

// AtRest is what [IssueAtRest] wrote to a store: the bodies of the secrets
// it issued, which no raw dump of the store may contain, and the token
// IDs, which the dump must contain (so an empty or wrong dump cannot
// pass). It never prints a secret.
type AtRest struct {
	ids     []string
	secrets []apitoken.Secret
	bodies  map[string]int      // body → index of its secret
	windows map[string]struct{} // every WindowLen-character window of every body
	hexWins map[string]struct{} // the same windows in lowercase hex
	// prefixes holds the first 8 bytes of each window, raw and in hex.
	prefixes map[uint64]struct{}
}

// IssueAtRest issues n org tokens of org_1 on store under policy, in the
// ways a secret reaches a store: half from an Issuer with defaults
// (SHA-256 digests), half from one with an HMAC hash key and a seal key
// (recoverable: the secret is also stored encrypted); every tenth token is
// then regenerated with a grace period, so its old digest stays stored as
// the previous hash. It returns every secret issued (old and new) and
// every ID.
func IssueAtRest(t *testing.T, store apitoken.Store, policy apitoken.Policy, n int) *AtRest {
	t.Helper()
	ctx := t.Context()
	plain, err := apitoken.NewIssuer(store, policy)
	require.NoError(t, err, "NewIssuer")
	sealed, err := apitoken.NewIssuer(store, policy, apitoken.WithHashKeys(randomKey()), apitoken.WithSealKeys(randomKey()),
		apitoken.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	require.NoError(t, err, "NewIssuer(WithHashKeys, WithSealKeys)")

	a := &AtRest{bodies: map[string]int{}, windows: map[string]struct{}{}, hexWins: map[string]struct{}{}, prefixes: map[uint64]struct{}{}}
	var secrets []apitoken.Secret
	for i := range n {
		iss := plain
		if i%2 == 1 {
			iss = sealed
		}
		secret, tok, err := iss.Issue(ctx, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: fmt.Sprintf("at rest %d", i)})
		require.NoError(t, err, "Issue %d", i)
		secrets = append(secrets, secret)
		a.ids = append(a.ids, tok.ID)
		if i%10 == 9 {
			secret, _, err = iss.Regenerate(ctx, tok.ID, apitoken.Lifetime{}, apitoken.WithGrace(time.Hour))
			require.NoError(t, err, "Regenerate %d", i)
			secrets = append(secrets, secret)
		}
	}
	a.secrets = secrets
	for i, s := range secrets {
		body := Body(s.Reveal())
		require.Len(t, body, apitoken.BodyLen, "body of secret %d", i)
		a.bodies[body] = i
		for j := 0; j+WindowLen <= len(body); j++ {
			w := body[j : j+WindowLen]
			hw := hex.EncodeToString([]byte(w))
			a.windows[w] = struct{}{}
			a.hexWins[hw] = struct{}{}
			a.prefixes[binary.LittleEndian.Uint64([]byte(w))] = struct{}{}
			a.prefixes[binary.LittleEndian.Uint64([]byte(hw))] = struct{}{}
		}
	}
	return a
}

// Body returns the random body of a well-formed token: the BodyLen
// characters between the last '_' and the checksum.
func Body(token string) string {
	rest := token[strings.LastIndexByte(token, '_')+1:]
	return rest[:min(len(rest), apitoken.BodyLen)]
}

func randomKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

// Secrets returns how many secrets a holds.
func (a *AtRest) Secrets() int { return len(a.secrets) }

// Secret returns the i-th secret issued (for a test that leaks one on
// purpose).
func (a *AtRest) Secret(i int) apitoken.Secret { return a.secrets[i] }

// Hits is what [AtRest.Find] found in a dump.
type Hits struct {
	Bodies  int // whole secret bodies
	Windows int // WindowLen-character windows of a body, as bytes
	Hex     int // windows in lowercase hex (as pg_dump writes bytea)
	Base64  int // windows inside base64 runs, decoded (as JSON writes []byte)
	First   int // offset of the first hit in the dump, -1 if none
}

// Zero reports whether nothing was found.
func (h Hits) Zero() bool { return h.Bodies+h.Windows+h.Hex+h.Base64 == 0 }

func (h Hits) String() string {
	return fmt.Sprintf("%d secret bodies, %d %d-character windows of one (%d in hex, %d in base64)",
		h.Bodies, h.Windows, WindowLen, h.Hex, h.Base64)
}

// Find searches dump for the secrets: whole bodies, and every window of
// every body as bytes, in lowercase hex and inside every run of base64
// characters, decoded at each of the four alignments.
func (a *AtRest) Find(dump []byte) Hits {
	h := Hits{First: -1}
	hit := func(n *int, at int) {
		*n++
		if h.First < 0 || at < h.First {
			h.First = at
		}
	}
	// A map of the first 8 bytes (as a uint64) of every window, raw and
	// in hex, filters the positions worth a full lookup.
	for i := 0; i+8 <= len(dump); i++ {
		p := binary.LittleEndian.Uint64(dump[i:])
		if _, ok := a.prefixes[p]; !ok {
			continue
		}
		if i+WindowLen <= len(dump) {
			if _, ok := a.windows[string(dump[i:i+WindowLen])]; ok {
				hit(&h.Windows, i)
				if i+apitoken.BodyLen <= len(dump) {
					if _, ok := a.bodies[string(dump[i:i+apitoken.BodyLen])]; ok {
						hit(&h.Bodies, i)
					}
				}
			}
		}
		if i+2*WindowLen <= len(dump) {
			if _, ok := a.hexWins[string(dump[i:i+2*WindowLen])]; ok {
				hit(&h.Hex, i)
			}
		}
	}
	// Runs of base64 characters ('=' ends one) long enough to hold a window
	// (16 characters encode 12 bytes), decoded from each of the four
	// offsets.
	for start := 0; start < len(dump); {
		end := start
		for end < len(dump) && isBase64(dump[end]) {
			end++
		}
		if end-start >= 16 {
			run := dump[start:end]
			for off := range 4 {
				if off >= len(run) {
					break
				}
				chunk := run[off:]
				if len(chunk)%4 == 1 { // a lone character decodes to nothing
					chunk = chunk[:len(chunk)-1]
				}
				enc := base64.RawStdEncoding
				if bytes.ContainsAny(chunk, "-_") {
					enc = base64.RawURLEncoding
				}
				dec := make([]byte, enc.DecodedLen(len(chunk)))
				if k, err := enc.Decode(dec, chunk); err == nil {
					for i := 0; i+WindowLen <= k; i++ {
						if _, ok := a.prefixes[binary.LittleEndian.Uint64(dec[i:])]; !ok {
							continue
						}
						if _, ok := a.windows[string(dec[i:i+WindowLen])]; ok {
							hit(&h.Base64, start)
						}
					}
				}
			}
		}
		start = end + 1
	}
	return h
}

func isBase64(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '-' || c == '_'
}

// A Dump is raw bytes of a store, named for messages ("the database
// file", "the append-only file").
type Dump struct {
	Name  string
	Bytes []byte
}

// Check searches each dump for the secrets and asserts that none has any
// (no body, no window of one in any encoding), and that every token ID is
// in some dump (the dumps hold the tokens). It logs the figures.
func (a *AtRest) Check(t *testing.T, dumps ...Dump) {
	t.Helper()
	size := 0
	for _, d := range dumps {
		size += len(d.Bytes)
		h := a.Find(d.Bytes)
		t.Logf("%s: %d bytes, %s", d.Name, len(d.Bytes), h)
		assert.True(t, h.Zero(), "%s (%d bytes) holds plaintext: %s, the first at offset %d; want none", d.Name, len(d.Bytes), h, h.First)
	}
	found := map[string]bool{}
	for _, d := range dumps {
		a.findIDs(d.Bytes, found)
	}
	missing := len(a.ids) - len(found)
	assert.Zero(t, missing, "token IDs of %d missing from the dumps (%d bytes in all): the dumps do not hold the tokens", len(a.ids), size)
	t.Logf("%d tokens, %d secrets (%d windows): %d of %d IDs found in %d bytes", len(a.ids), len(a.bodies), len(a.windows), len(a.ids)-missing, len(a.ids), size)
}

// findIDs adds to found every ID of a that dump holds. IDs end in random
// characters (UUID v7), so a map of their last 8 bytes filters the
// positions worth a full lookup.
func (a *AtRest) findIDs(dump []byte, found map[string]bool) {
	ids := map[string]bool{}
	tails := map[uint64]struct{}{}
	lengths := map[int]bool{}
	for _, id := range a.ids {
		if len(id) < 8 {
			if bytes.Contains(dump, []byte(id)) {
				found[id] = true
			}
			continue
		}
		ids[id] = true
		tails[binary.LittleEndian.Uint64([]byte(id[len(id)-8:]))] = struct{}{}
		lengths[len(id)] = true
	}
	for i := 0; i+8 <= len(dump); i++ {
		if _, ok := tails[binary.LittleEndian.Uint64(dump[i:])]; !ok {
			continue
		}
		for n := range lengths {
			if start := i + 8 - n; start >= 0 && ids[string(dump[start:i+8])] {
				found[string(dump[start:i+8])] = true
			}
		}
	}
}

// Leak issues one more token on store under policy whose description is
// the first secret of a in plain text, as a store that kept plaintext
// would hold it. A test that then finds it with [AtRest.CheckLeak] in a
// fresh dump shows that its dump and search can fail.
func (a *AtRest) Leak(t *testing.T, store apitoken.Store, policy apitoken.Policy) {
	t.Helper()
	iss, err := apitoken.NewIssuer(store, policy)
	require.NoError(t, err, "NewIssuer")
	_, _, err = iss.Issue(t.Context(), apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "leaked", Description: a.secrets[0].Reveal()})
	require.NoError(t, err, "Issue(a secret in its description)")
}

// CheckLeak asserts that the dumps, taken after [AtRest.Leak], hold the
// leaked secret's body.
func (a *AtRest) CheckLeak(t *testing.T, dumps ...Dump) {
	t.Helper()
	bodies := 0
	for _, d := range dumps {
		h := a.Find(d.Bytes)
		t.Logf("after a secret was stored in plain: %s: %s", d.Name, h)
		bodies += h.Bodies
	}
	assert.Positive(t, bodies, "secret bodies found after one was stored in plain; want at least 1: the dump or the search misses plaintext")
}

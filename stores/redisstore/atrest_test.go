package redisstore_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/storefaults"
	"github.com/apitoken/apitoken/internal/testservers"
	"github.com/apitoken/apitoken/stores/redisstore"
	"github.com/apitoken/apitoken/storetest"
)

// TestNoPlaintextAtRest: after 1,000 tokens are issued (half of them
// HMAC-hashed and sealed for recovery, a tenth regenerated with a grace
// period) on a server with an append-only file, neither the DUMP of every
// key of the namespace (found with SCAN) nor the append-only files hold a
// secret body or a 12-character window of one, as bytes, in hex or in
// base64; both hold every token ID. Once a secret is stored in plain (as
// a token's description), both dumps show it: the search can fail.
func TestNoPlaintextAtRest(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := testservers.StartRedisWith(t, testservers.RedisConfig{AppendOnly: true, AppendFsync: "always"})
	client := singleClient(t, srv)
	ns := storetest.Namespace(t)
	s, err := redisstore.New(ctx, client, redisstore.WithKeyPrefix(ns))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close(context.Background()) })
	pol := apitoken.Policy{Prefix: "test"}
	a := storefaults.IssueAtRest(t, s, pol, 1000)

	dumps := func() (scanDump, aofDump storefaults.Dump) {
		var dumped bytes.Buffer
		keys := 0
		iter := client.Scan(ctx, 0, "{"+ns+"}:*", 1000).Iterator()
		for iter.Next(ctx) {
			v, err := client.Dump(ctx, iter.Val()).Result()
			require.NoError(t, err, "DUMP")
			dumped.WriteString(v)
			keys++
		}
		require.NoError(t, iter.Err(), "SCAN")
		dir, err := client.ConfigGet(ctx, "dir").Result()
		require.NoError(t, err)
		sub, err := client.ConfigGet(ctx, "appenddirname").Result()
		require.NoError(t, err)
		aofDir := filepath.Join(dir["dir"], sub["appenddirname"])
		files, err := os.ReadDir(aofDir)
		require.NoError(t, err, "the append-only directory")
		var aof bytes.Buffer
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(aofDir, f.Name()))
			require.NoError(t, err)
			aof.Write(b)
		}
		return storefaults.Dump{Name: fmt.Sprintf("DUMP of the namespace's %d keys (SCAN)", keys), Bytes: dumped.Bytes()},
			storefaults.Dump{Name: fmt.Sprintf("the %d append-only files", len(files)), Bytes: aof.Bytes()}
	}
	scan, aof := dumps()
	// Each holds the tokens on its own.
	a.Check(t, scan)
	a.Check(t, aof)

	// The same dumps find a secret the store holds in plain.
	a.Leak(t, s, pol)
	scan, aof = dumps()
	a.CheckLeak(t, scan)
	a.CheckLeak(t, aof)
}

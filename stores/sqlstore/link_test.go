package sqlstore_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDriversLinked builds a program that uses only the SQLite store and
// one that uses only the PostgreSQL store (testdata/sqliteonly and
// testdata/postgresonly) and reads the modules each binary links with
// go version -m: each carries its own driver and not the other's.
func TestDriversLinked(t *testing.T) {
	if testing.Short() {
		t.Skip("builds programs with the go command")
	}
	goBin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command")
	const pgx, sqlite = "github.com/jackc/pgx/v5", "modernc.org/sqlite"
	for _, c := range []struct {
		program      string
		links, skips string
	}{
		{"sqliteonly", sqlite, pgx},
		{"postgresonly", pgx, sqlite},
	} {
		t.Run(c.program, func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), c.program)
			out, err := exec.Command(goBin, "build", "-o", bin, "./testdata/"+c.program).CombinedOutput()
			require.NoError(t, err, "go build:\n%s", out)
			out, err = exec.Command(goBin, "version", "-m", bin).CombinedOutput()
			require.NoError(t, err, "go version -m:\n%s", out)
			assert.Contains(t, string(out), "\tdep\t"+c.links+"\t", "go version -m %s", c.program)
			assert.NotContains(t, string(out), c.skips, "go version -m %s", c.program)
		})
	}
}

package apitoken_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOptionsAreCheckedByTheCompiler builds two programs against this module
// in a temporary module: one passing each service its own options and the
// shared ones (it must build), and one passing a Pruner option to NewIssuer
// (it must not).
func TestOptionsAreCheckedByTheCompiler(t *testing.T) {
	if testing.Short() {
		t.Skip("builds programs with the go command")
	}
	goBin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command")
	root, err := os.Getwd()
	require.NoError(t, err)
	build := func(body string) (string, error) {
		dir := t.TempDir()
		mod := "module probe\n\ngo 1.26\n\nrequire github.com/apitoken/apitoken v0.0.0\n\n" +
			"replace github.com/apitoken/apitoken => " + root + "\n"
		sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644))
		src := "package main\n\nimport (\n\t\"time\"\n\n\t\"github.com/apitoken/apitoken\"\n\t\"github.com/apitoken/apitoken/stores/memstore\"\n)\n\n" +
			"func main() {\n\tstore, pol := memstore.New(), apitoken.Policy{}\n\t_ = time.Second\n" + body + "}\n"
		require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644))
		cmd := exec.Command(goBin, "build", "-o", os.DevNull, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GOPROXY=off")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := build(`	keys := apitoken.WithHashKeys(make([]byte, 32))
	_, _ = apitoken.NewIssuer(store, pol, keys, apitoken.WithClock(time.Now), apitoken.WithLogger(nil))
	v, _ := apitoken.NewValidator(store, pol, keys, apitoken.WithClock(time.Now), apitoken.WithFlushInterval(time.Second))
	_, _ = apitoken.NewPruner(store, pol, apitoken.WithClock(time.Now), apitoken.WithFlushFirst(v), apitoken.WithBatchSize(10))
`)
	require.NoError(t, err, "the well-typed program must build:\n%s", out)

	out, err = build("\t_, _ = apitoken.NewIssuer(store, pol, apitoken.WithBatchSize(10))\n")
	require.Error(t, err, "a Pruner option passed to NewIssuer must not compile")
	assert.True(t, strings.Contains(out, "does not implement apitoken.IssuerOption"), "compiler output:\n%s", out)
}

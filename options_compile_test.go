package apitoken_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOptionsAreCheckedByTheCompiler builds two programs: one passing each
// service its own options and the shared ones (testdata/options/welltyped:
// it must build), and one passing a Pruner option to NewIssuer
// (testdata/options/prunerforissuer: it must not).
func TestOptionsAreCheckedByTheCompiler(t *testing.T) {
	if testing.Short() {
		t.Skip("builds programs with the go command")
	}
	goBin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command")
	build := func(program string) (string, error) {
		out, err := exec.Command(goBin, "build", "-o", os.DevNull, "./testdata/options/"+program).CombinedOutput()
		return string(out), err
	}
	out, err := build("welltyped")
	require.NoError(t, err, "the well-typed program must build:\n%s", out)
	out, err = build("prunerforissuer")
	require.Error(t, err, "a Pruner option passed to NewIssuer must not compile")
	assert.Contains(t, out, "does not implement apitoken.IssuerOption", "compiler output")
}

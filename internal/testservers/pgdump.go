package testservers

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"testing"
)

// Dump returns what pg_dump writes for the database dsn names on this
// cluster (a DSN of [PG.CreateDatabase] or [PG.DSN]): the plain SQL
// script of its schema and data, every row of every table. pg_dump is the
// cluster's own, so its version matches the server's; it connects as a
// client, over TCP. A failure fails t.
func (p *PG) Dump(t testing.TB, dsn string) []byte {
	t.Helper()
	cmd := exec.Command(filepath.Join(p.bin, "pg_dump"), "--no-password", "--dbname="+dsn)
	cmd.Env = append(cmd.Environ(), "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("testservers: pg_dump: %v\n%s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes()
}

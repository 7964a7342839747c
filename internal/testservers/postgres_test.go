package testservers_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/apitoken/apitoken/internal/testservers"
)

func ping(ctx context.Context, dsn string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	var one int
	return db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

func TestPostgresShared(t *testing.T) {
	t.Cleanup(testservers.StopPostgres) // the only user of the shared cluster here
	pg := testservers.Postgres(t)
	if again := testservers.Postgres(t); again != pg {
		t.Errorf("second Postgres(t) = %p, want the shared cluster %p", again, pg)
	}
	a, b := pg.CreateDatabase(t), pg.CreateDatabase(t)
	if a == b {
		t.Errorf("CreateDatabase twice = %q both times, want two databases", a)
	}
	for _, dsn := range []string{a, b} {
		if err := ping(t.Context(), dsn); err != nil {
			t.Errorf("SELECT 1 on a new database: %v", err)
		}
	}
}

func TestPostgresStopStart(t *testing.T) {
	pg := testservers.NewPostgres(t)
	dsn := pg.DSN("postgres")
	if err := ping(t.Context(), dsn); err != nil {
		t.Fatalf("SELECT 1 on a new cluster: %v", err)
	}
	if err := pg.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := ping(t.Context(), dsn); err == nil {
		t.Fatalf("SELECT 1 after Stop succeeded, want an error")
	}
	if err := pg.Start(); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	if err := ping(t.Context(), dsn); err != nil {
		t.Errorf("SELECT 1 after Start: %v", err)
	}
}

package sqlstore_test

import (
	"database/sql"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/testservers"
	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/stores/sqlstore/postgres"
)

// TestRevokeRacesValidate: 8 goroutines validate one token while another
// revokes it. Once Revoke has returned, no validation may succeed.
func TestRevokeRacesValidate(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, _ *sql.DB) {
		const validators, validationsAfter = 8, 25
		iss, v := services(t, s)
		secret, tok := issue(t, iss)
		var revoked atomic.Bool
		var ready, wg sync.WaitGroup
		ready.Add(validators)
		for i := range validators {
			wg.Go(func() {
				readied := false
				defer func() {
					if !readied {
						ready.Done()
					}
				}()
				for after := 0; after < validationsAfter; {
					was := revoked.Load() // read before the call starts
					_, err := v.Validate(t.Context(), secret, readDevices)
					switch {
					case was && err == nil:
						t.Errorf("validator %d: Validate after Revoke returned succeeded, want %v", i, apitoken.ErrRevoked)
						return
					case err != nil && !errors.Is(err, apitoken.ErrRevoked):
						t.Errorf("validator %d: Validate error = %v, want nil or %v", i, err, apitoken.ErrRevoked)
						return
					case !readied && err == nil:
						readied = true
						ready.Done()
					}
					if was {
						after++
					}
				}
			})
		}
		ready.Wait() // every validator has succeeded once
		if err := iss.Revoke(t.Context(), tok.ID); err != nil {
			t.Errorf("Revoke: %v", err)
		}
		revoked.Store(true)
		wg.Wait()
	})
}

// TestPostgresDown stops PostgreSQL under a running store: validation
// fails with ErrStoreUnavailable (never succeeds) and works again once the
// server is back, with the same Store and *sql.DB.
func TestPostgresDown(t *testing.T) {
	pg := testservers.NewPostgres(t)
	dsn := pg.DSN("postgres")
	db, err := postgres.OpenDB(t.Context(), dsn)
	if err != nil {
		t.Fatalf("postgres.OpenDB: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	s := newStore(t, db, sqlstore.Postgres)
	iss, v := services(t, s)
	secret, _ := issue(t, iss)
	if _, err := v.Validate(t.Context(), secret, readDevices); err != nil {
		t.Fatalf("Validate before the server stops: %v", err)
	}

	if err := pg.Stop(); err != nil {
		t.Fatalf("stop PostgreSQL: %v", err)
	}
	for i := range 5 {
		p, err := v.Validate(t.Context(), secret, readDevices)
		if !errors.Is(err, apitoken.ErrStoreUnavailable) {
			t.Fatalf("Validate #%d with PostgreSQL stopped = %v, %v; want error %v", i+1, p, err, apitoken.ErrStoreUnavailable)
		}
		if strings.Contains(err.Error(), dsn) || strings.Contains(err.Error(), secret) {
			t.Errorf("Validate error %q holds the DSN or the token", err)
		}
	}

	if err := pg.Start(); err != nil {
		t.Fatalf("start PostgreSQL again: %v", err)
	}
	// Pooled connections died with the server; each is discarded on its
	// first failure, so a bounded number of attempts gets through.
	var errs []error
	for range 20 {
		if _, err = v.Validate(t.Context(), secret, readDevices); err == nil {
			break
		}
		if !errors.Is(err, apitoken.ErrStoreUnavailable) {
			t.Fatalf("Validate after restart error = %v, want nil or %v", err, apitoken.ErrStoreUnavailable)
		}
		errs = append(errs, err)
	}
	if err != nil {
		t.Fatalf("Validate still fails after PostgreSQL restarted and 20 attempts: %v", errors.Join(errs...))
	}
	t.Logf("Validate succeeded after restart following %d failed attempts", len(errs))
	// Writes work again too.
	if _, tok := issue(t, iss); tok == nil {
		t.Fatal("Issue after restart returned no token")
	}
}

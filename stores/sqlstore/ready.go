package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/apitoken/apitoken"
)

// Ready reports whether the store can serve: nil once its database holds
// the current schema; [ErrNotMigrated], [ErrSchemaOutdated] or
// [ErrSchemaTooNew] (whose messages say what to do) when it does not;
// [apitoken.ErrClosed] after Close; and an error matching
// [apitoken.ErrStoreUnavailable] when the database cannot be reached.
// apitoken.NewIssuer, NewValidator and NewPruner call it, so a program
// whose database was never migrated fails at start-up with ErrNotMigrated
// instead of answering every request with 503.
func (s *Store) Ready(ctx context.Context) error {
	err := s.ready(ctx)
	switch {
	case err == nil, errors.Is(err, ErrNotMigrated), errors.Is(err, ErrSchemaOutdated),
		errors.Is(err, ErrSchemaTooNew), errors.Is(err, apitoken.ErrClosed):
		return err
	}
	return fmt.Errorf("sqlstore: ready: %w: %w", apitoken.ErrStoreUnavailable, err)
}

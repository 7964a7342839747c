package sqlstore

import "context"

// MigrateTo migrates s up to version only, for tests of upgrades from an
// older schema.
func MigrateTo(ctx context.Context, s *Store, version int) error { return s.migrateTo(ctx, version) }

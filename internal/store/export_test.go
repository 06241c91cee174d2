package store

import "context"

// MigrateTo applies the migrations up to version, for tests of a later migration.
func (db *DB) MigrateTo(ctx context.Context, version int64) error { return db.migrateTo(ctx, version) }

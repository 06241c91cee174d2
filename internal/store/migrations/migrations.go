// Package migrations embeds the SQL migrations. Each file is written once for SQLite and
// PostgreSQL: ids are TEXT (UUIDv7), times are BIGINT Unix milliseconds, flags are BOOLEAN.
package migrations

import "embed"

// FS holds the numbered goose migrations.
//
//go:embed *.sql
var FS embed.FS

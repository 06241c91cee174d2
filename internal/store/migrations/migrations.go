// Package migrations embeds the SQL migrations. Each file is written once for SQLite and
// PostgreSQL: ids are TEXT (UUIDv7), times are BIGINT Unix milliseconds, flags are BOOLEAN.
// Version 6 is a Go migration (internal/store/clientkey.go), so there is no 00006 file here: the
// next SQL file is 00007.
package migrations

import "embed"

// FS holds the numbered goose migrations.
//
//go:embed *.sql
var FS embed.FS

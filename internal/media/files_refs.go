package media

import (
	"context"
	"database/sql"
	"fmt"
)

// Querier runs a query: a transaction, or a connection pool.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// FileRef is a file that a row of another feature references, with its metadata.
type FileRef struct {
	Key  string // the referencing row's key, as refs returned it
	File File
}

// FilesOf returns the files that another feature's rows reference, with their metadata, in one
// statement: refs is a query over the caller's own tables that returns the columns ref_key,
// file_id and position, with args as its parameters ($1...), and q runs it joined with media's
// files and media_blobs (in the caller's transaction when q is one). The answer is ordered by
// ref_key, then position; a reference to a file that no longer exists is left out.
//
// This is the one join across features' tables, kept because it is the fast path (a page of
// messages with its attachments in one round trip): the caller's SQL names only its own tables,
// this SQL only media's. chat's message attachments use it.
func (f *Files) FilesOf(ctx context.Context, q Querier, refs string, args ...any) ([]FileRef, error) {
	rows, err := q.QueryContext(ctx, `SELECT r.ref_key, `+fileColumns+` FROM (`+refs+`) r
		JOIN files f ON f.id = r.file_id JOIN media_blobs b ON b.source_sha256 = f.source_sha256
		ORDER BY r.ref_key, r.position`, args...)
	if err != nil {
		return nil, fmt.Errorf("media: files of: %w", err)
	}
	defer rows.Close()
	var out []FileRef
	for rows.Next() {
		var ref FileRef
		row, err := scanFile(keyed{rows, &ref.Key})
		if err != nil {
			return nil, fmt.Errorf("media: files of: %w", err)
		}
		ref.File = f.file(row)
		out = append(out, ref)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("media: files of: %w", err)
	}
	return out, nil
}

// keyed scans a key column before the columns of a file.
type keyed struct {
	rows *sql.Rows
	key  *string
}

func (k keyed) Scan(dest ...any) error { return k.rows.Scan(append([]any{k.key}, dest...)...) }

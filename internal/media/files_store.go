package media

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nerutalk/nerutalk/internal/store"
)

// content is a row of media_blobs: stored bytes shared by every upload of the same content.
type content struct {
	SourceSHA256 string
	SHA256       string
	StorageKey   string
	MIME         string
	Kind         string
	Size         int64
	Width        int // 0 = not an image
	Height       int
	ThumbKey     string // "" = no thumbnail
	ThumbMIME    string
	ThumbSize    int64
	ThumbWidth   int
	ThumbHeight  int
	CreatedAt    int64
}

// fileRow is a row of files joined with its content.
type fileRow struct {
	ID          string
	OwnerID     string
	Name        string
	CreatedAt   int64
	AttachCount int64
	AttachedAt  sql.NullInt64
	content
}

// errContentGone means the content a new file was to share was deleted meanwhile.
var errContentGone = errors.New("media: shared content deleted concurrently")

// fileStore is the SQL of the media package; one text for SQLite and PostgreSQL.
type fileStore struct {
	db *store.DB
}

const fileColumns = `f.id, f.owner_id, f.name, f.created_at, f.attach_count, f.attached_at,
	b.source_sha256, b.sha256, b.storage_key, b.mime_type, b.kind, b.size, b.width, b.height,
	b.thumb_key, b.thumb_mime, b.thumb_size, b.thumb_width, b.thumb_height, b.created_at`

type scanner interface{ Scan(dest ...any) error }

func scanFile(s scanner) (fileRow, error) {
	var f fileRow
	var w, h, tw, th sql.NullInt64
	err := s.Scan(&f.ID, &f.OwnerID, &f.Name, &f.CreatedAt, &f.AttachCount, &f.AttachedAt,
		&f.SourceSHA256, &f.SHA256, &f.StorageKey, &f.MIME, &f.Kind, &f.Size, &w, &h,
		&f.ThumbKey, &f.ThumbMIME, &f.ThumbSize, &tw, &th, &f.content.CreatedAt)
	f.Width, f.Height, f.ThumbWidth, f.ThumbHeight = int(w.Int64), int(h.Int64), int(tw.Int64), int(th.Int64)
	return f, err
}

// get returns a file with its content, store.ErrNotFound (wrapped) when it does not exist.
func (s *fileStore) get(ctx context.Context, id string) (fileRow, error) {
	f, err := scanFile(s.db.R.QueryRowContext(ctx, `SELECT `+fileColumns+`
		FROM files f JOIN media_blobs b ON b.source_sha256 = f.source_sha256 WHERE f.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return f, fmt.Errorf("media: file %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return f, fmt.Errorf("media: file %s: %w", id, err)
	}
	return f, nil
}

// ownedContentMIME returns the stored type of the content with this source hash if it is stored
// and ownerID has a file of it. Other users' files are deliberately not looked at: see Upload.
func (s *fileStore) ownedContentMIME(ctx context.Context, ownerID, sourceSHA256 string) (string, bool, error) {
	var t string
	err := s.db.R.QueryRowContext(ctx, `SELECT b.mime_type FROM media_blobs b
		WHERE b.source_sha256 = $1 AND EXISTS (SELECT 1 FROM files f WHERE f.source_sha256 = $1 AND f.owner_id = $2)`,
		sourceSHA256, ownerID).Scan(&t)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("media: find content: %w", err)
	}
	return t, true, nil
}

// create inserts a file. With c, it first records c as the content of c.SourceSHA256 unless an
// upload of the same bytes did so already (that one wins); without c, the content must exist
// (errContentGone otherwise). It returns the file with the content it points to: when that
// content's StorageKey differs from c's, c's objects are unused and the caller deletes them.
//
// quota > 0 caps what the owner's files add up to (usage) with this one: over it, nothing is
// written and the error is errQuota (checked in the transaction that adds the file).
func (s *fileStore) create(ctx context.Context, f fileRow, c *content, quota int64) (fileRow, error) {
	var out fileRow
	err := retryOnForeignKey(func() error {
		return s.db.Tx(ctx, func(tx *sql.Tx) error {
			if c != nil {
				if _, err := tx.ExecContext(ctx, `INSERT INTO media_blobs (source_sha256, sha256, storage_key,
					mime_type, kind, size, width, height, thumb_key, thumb_mime, thumb_size, thumb_width, thumb_height, created_at)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
					ON CONFLICT (source_sha256) DO NOTHING`,
					c.SourceSHA256, c.SHA256, c.StorageKey, c.MIME, c.Kind, c.Size, nullInt(c.Width), nullInt(c.Height),
					c.ThumbKey, c.ThumbMIME, c.ThumbSize, nullInt(c.ThumbWidth), nullInt(c.ThumbHeight), c.CreatedAt); err != nil {
					return fmt.Errorf("media: insert content: %w", err)
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO files (id, owner_id, source_sha256, name, created_at)
				SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM media_blobs WHERE source_sha256 = $3)`,
				f.ID, f.OwnerID, f.SourceSHA256, f.Name, f.CreatedAt); err != nil {
				return fmt.Errorf("media: insert file: %w", err)
			}
			var err error
			out, err = scanFile(tx.QueryRowContext(ctx, `SELECT `+fileColumns+`
				FROM files f JOIN media_blobs b ON b.source_sha256 = f.source_sha256 WHERE f.id = $1`, f.ID))
			if errors.Is(err, sql.ErrNoRows) {
				return errContentGone
			}
			if err != nil {
				return fmt.Errorf("media: read file back: %w", err)
			}
			if quota > 0 {
				used, err := usage(ctx, tx, f.OwnerID)
				if err != nil {
					return err
				}
				if used > quota {
					return quotaExceeded(quota, used-out.Size)
				}
			}
			return nil
		})
	})
	return out, err
}

// usage is the sum of the sizes of ownerID's files: what they count against the storage quota.
// A content shared by several files (identical uploads, of one owner or several) counts once per
// file. Thumbnails are not counted (they are ours, and at most a few tens of KB).
func usage(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, ownerID string) (int64, error) {
	var used int64
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(SUM(b.size), 0) FROM files f
		JOIN media_blobs b ON b.source_sha256 = f.source_sha256 WHERE f.owner_id = $1`, ownerID).Scan(&used); err != nil {
		return 0, fmt.Errorf("media: usage: %w", err)
	}
	return used, nil
}

// Conditions under which delete removes a file (fixed SQL fragments, never user input).
const (
	condAny        = `TRUE`
	condOwner      = `owner_id = $2 AND attach_count = 0`
	condOrphan     = `attached_at IS NULL AND created_at < $2`
	condUnattached = `attach_count = 0`
)

// deleteFile removes file id if cond holds, and the content it pointed at when no other file
// does. It returns whether the file was deleted and the storage keys that are no longer
// referenced (to delete from the blob store once the transaction has committed).
func (s *fileStore) deleteFile(ctx context.Context, id, cond string, args ...any) (deleted bool, unused []string, err error) {
	err = retryOnForeignKey(func() error {
		deleted, unused = false, nil
		return s.db.Tx(ctx, func(tx *sql.Tx) error {
			var source string
			err := tx.QueryRowContext(ctx, `DELETE FROM files WHERE id = $1 AND `+cond+` RETURNING source_sha256`,
				append([]any{id}, args...)...).Scan(&source)
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("media: delete file: %w", err)
			}
			deleted = true
			unused, err = deleteUnreferenced(ctx, tx, source)
			return err
		})
	})
	return deleted, unused, err
}

// deleteUnreferenced removes the content row of source when no file points at it and returns its
// storage keys.
func deleteUnreferenced(ctx context.Context, tx *sql.Tx, source string) ([]string, error) {
	var key, thumb string
	err := tx.QueryRowContext(ctx, `DELETE FROM media_blobs WHERE source_sha256 = $1
		AND NOT EXISTS (SELECT 1 FROM files WHERE source_sha256 = $1)
		RETURNING storage_key, thumb_key`, source).Scan(&key, &thumb)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("media: delete content: %w", err)
	}
	if thumb != "" {
		return []string{key, thumb}, nil
	}
	return []string{key}, nil
}

// attach counts one more message referencing the file.
func (s *fileStore) attach(ctx context.Context, id string, now time.Time) error {
	res, err := s.db.W.ExecContext(ctx, `UPDATE files SET attach_count = attach_count + 1,
		attached_at = COALESCE(attached_at, $2) WHERE id = $1`, id, store.Millis(now))
	if err != nil {
		return fmt.Errorf("media: attach %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("media: attach %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// lockOwned counts which of ids (sorted) exist and belong to ownerID, locking their rows on
// PostgreSQL (in id order) until tx ends.
func (s *fileStore) lockOwned(ctx context.Context, tx *sql.Tx, ownerID string, ids []string) (int, error) {
	var rows *sql.Rows
	var err error
	if s.db.Dialect == store.Postgres {
		rows, err = tx.QueryContext(ctx, `SELECT id FROM files WHERE id = ANY($1::text[]) AND owner_id = $2
			ORDER BY id FOR UPDATE`, ids, ownerID)
	} else {
		rows, err = tx.QueryContext(ctx, `SELECT id FROM files WHERE id IN (SELECT value FROM json_each($1))
			AND owner_id = $2`, jsonList(ids), ownerID)
	}
	if err != nil {
		return 0, fmt.Errorf("media: lock files: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("media: lock files: %w", err)
	}
	return n, nil
}

// attachMany counts one more message referencing each of ids, in tx.
func (s *fileStore) attachMany(ctx context.Context, tx *sql.Tx, ids []string, now time.Time) error {
	var err error
	if s.db.Dialect == store.Postgres {
		_, err = tx.ExecContext(ctx, `UPDATE files SET attach_count = attach_count + 1,
			attached_at = COALESCE(attached_at, $2) WHERE id = ANY($1::text[])`, ids, store.Millis(now))
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE files SET attach_count = attach_count + 1,
			attached_at = COALESCE(attached_at, $2) WHERE id IN (SELECT value FROM json_each($1))`, jsonList(ids), store.Millis(now))
	}
	if err != nil {
		return fmt.Errorf("media: attach files: %w", err)
	}
	return nil
}

// jsonList encodes strings as a JSON array for json_each (SQLite).
func jsonList(ids []string) string {
	b, _ := json.Marshal(ids) // strings only: cannot fail
	return string(b)
}

// release counts one message less; at zero the file is deleted (in the same transaction, so a
// concurrent attach either comes first or finds the file gone).
func (s *fileStore) release(ctx context.Context, id string) (unused []string, err error) {
	err = retryOnForeignKey(func() error {
		unused = nil
		return s.db.Tx(ctx, func(tx *sql.Tx) error {
			var count int64
			var source string
			err := tx.QueryRowContext(ctx, `UPDATE files SET attach_count = attach_count - 1
				WHERE id = $1 AND attach_count > 0 RETURNING attach_count, source_sha256`, id).Scan(&count, &source)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("media: release %s: %w", id, store.ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("media: release %s: %w", id, err)
			}
			if count > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM files WHERE id = $1`, id); err != nil {
				return fmt.Errorf("media: release %s: %w", id, err)
			}
			unused, err = deleteUnreferenced(ctx, tx, source)
			return err
		})
	})
	return unused, err
}

// orphans lists up to limit files never attached and created before cutoff.
func (s *fileStore) orphans(ctx context.Context, cutoff time.Time, limit int) ([]string, error) {
	rows, err := s.db.R.QueryContext(ctx, `SELECT id FROM files WHERE attached_at IS NULL AND created_at < $1
		ORDER BY created_at LIMIT $2`, store.Millis(cutoff), limit)
	if err != nil {
		return nil, fmt.Errorf("media: list orphans: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("media: list orphans: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// unreferencedContents lists up to limit contents that no file points at (left by files deleted
// with their owner's account) created before cutoff.
func (s *fileStore) unreferencedContents(ctx context.Context, cutoff time.Time, limit int) ([]string, error) {
	rows, err := s.db.R.QueryContext(ctx, `SELECT b.source_sha256 FROM media_blobs b
		WHERE b.created_at <= $1 AND NOT EXISTS (SELECT 1 FROM files f WHERE f.source_sha256 = b.source_sha256)
		LIMIT $2`, store.Millis(cutoff), limit)
	if err != nil {
		return nil, fmt.Errorf("media: list unreferenced contents: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("media: list unreferenced contents: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// deleteContentIfUnreferenced removes one unreferenced content row and returns its keys.
func (s *fileStore) deleteContentIfUnreferenced(ctx context.Context, source string) (unused []string, err error) {
	err = retryOnForeignKey(func() error {
		return s.db.Tx(ctx, func(tx *sql.Tx) error {
			unused, err = deleteUnreferenced(ctx, tx, source)
			return err
		})
	})
	return unused, err
}

// retryOnForeignKey runs fn again (a few times) when it fails on a foreign key: on PostgreSQL an
// upload sharing some content and the deletion of that content's last file can cross; one of the
// two transactions then fails on the key and its retry sees the other's result.
func retryOnForeignKey(fn func() error) error {
	var err error
	for range 4 {
		if err = fn(); !store.IsForeignKeyViolation(err) {
			return err
		}
	}
	return err
}

func nullInt(v int) sql.NullInt64 {
	return sql.NullInt64{Int64: int64(v), Valid: v != 0}
}

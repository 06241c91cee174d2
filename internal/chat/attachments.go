package chat

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
)

// MaxAttachments is the most files one message carries.
const MaxAttachments = 10

// Files is what chat needs of the uploaded files (the media package's, adapted where the server
// wires the features), in chat's own types.
type Files interface {
	// Get returns a file's owner and what a message carrying it shows; a missing file is a
	// not_found apperr.
	Get(ctx context.Context, id string) (FileInfo, error)
	// AttachTx counts one more message referencing each of ids, inside the transaction that
	// stores the message; ok is false (nothing changed) when one is missing or not ownerID's.
	AttachTx(ctx context.Context, tx *sql.Tx, ownerID string, ids []string) (ok bool, err error)
	// Release counts one message less; the file is deleted after its last release.
	Release(ctx context.Context, id string) error
	// FilesOf runs refs, a query over chat's own tables that returns the columns ref_key,
	// file_id and position (args are its parameters), joined with the files' metadata in one
	// statement run by q; the answer is ordered by ref_key, then position, and leaves out files
	// that no longer exist.
	FilesOf(ctx context.Context, q Querier, refs string, args ...any) ([]FileRef, error)
}

// FileInfo is an uploaded file as chat sees it.
type FileInfo struct {
	OwnerID    string
	Attachment Attachment // what a message that carries the file shows
}

// FileRef is a file that a row of chat's references: Key is the row's ref_key.
type FileRef struct {
	Key        string
	Attachment Attachment
}

// Querier runs a query: a transaction, or the read pool.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// errInvalidAttachment answers a file that is not the sender's: unknown, someone else's (the same
// answer, so that a file's existence does not leak) or deleted meanwhile.
func errInvalidAttachment(i int) *apperr.Error {
	loc := "body.attachment_ids"
	if i >= 0 {
		loc += "[" + strconv.Itoa(i) + "]"
	}
	return invalid("invalid_attachment", loc, "no such file of yours: upload it with POST /files first")
}

// checkAttachments validates in's attachment_ids for sender and the kind they go with (inferring
// the kind from the first file when it was omitted), and returns their metadata in order.
func (s *Service) checkAttachments(ctx context.Context, sender string, in *SendInput) ([]Attachment, error) {
	ids := in.AttachmentIDs
	if len(ids) > MaxAttachments {
		return nil, apperr.Invalid("body.attachment_ids", fmt.Sprintf("at most %d files", MaxAttachments))
	}
	seen := make(map[string]bool, len(ids))
	out := make([]Attachment, 0, len(ids))
	for i, id := range ids {
		if seen[id] {
			e := errInvalidAttachment(i)
			e.Detail = "the same file is listed twice"
			return nil, e
		}
		seen[id] = true
		if s.files == nil || !validID(id) {
			return nil, errInvalidAttachment(i)
		}
		f, err := s.files.Get(ctx, id)
		if isNotFound(err) || (err == nil && f.OwnerID != sender) {
			return nil, errInvalidAttachment(i)
		}
		if err != nil {
			return nil, s.internal("attachment", err)
		}
		out = append(out, f.Attachment)
	}
	if in.Kind == "" {
		in.Kind = KindText
		if len(out) > 0 {
			in.Kind = Kind(out[0].Kind)
		}
	}
	switch {
	case in.Kind.needsAttachment() && len(out) == 0:
		return nil, apperr.Invalid("body.attachment_ids", fmt.Sprintf("a message of kind %s carries at least one file", in.Kind))
	case (in.Kind == KindSticker || in.Kind == KindGIF) && len(out) > 1:
		return nil, apperr.Invalid("body.attachment_ids", fmt.Sprintf("a message of kind %s carries at most one file", in.Kind))
	case !in.Kind.needsAttachment() && in.Kind != KindSticker && in.Kind != KindGIF && len(out) > 0:
		return nil, apperr.Invalid("body.attachment_ids", fmt.Sprintf("a message of kind %s carries no files", in.Kind))
	}
	return out, nil
}

// attachSends attaches the files of the new messages sends (inside the batch's transaction);
// a send whose files are gone or no longer the sender's fails alone with invalid_attachment.
// It returns the sends that remain.
func (s *Service) attachSends(ctx context.Context, tx *btx, ops []*op, res []opResult, sends []int) ([]int, error) {
	kept := sends[:0]
	for _, i := range sends {
		m := ops[i].send.msg
		if len(m.Attachments) > 0 {
			ids := make([]string, len(m.Attachments))
			for k, a := range m.Attachments {
				ids[k] = a.ID
			}
			ok := false
			var err error
			if s.files != nil {
				ok, err = s.files.AttachTx(ctx, tx.Tx, m.SenderID, ids)
			}
			if err != nil {
				return nil, fmt.Errorf("attach: %w", err)
			}
			if !ok {
				res[i].err = errInvalidAttachment(-1)
				continue
			}
		}
		kept = append(kept, i)
	}
	return kept, nil
}

// insertAttachments writes the message_attachments rows of the messages res[idx], in one statement.
func insertAttachments(ctx context.Context, b *btx, res []opResult, idx []int) error {
	var msgs, files []string
	var pos []int64
	for _, i := range idx {
		for p, a := range res[i].msg.Attachments {
			msgs, files, pos = append(msgs, res[i].msg.ID), append(files, a.ID), append(pos, int64(p))
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	var err error
	if b.pg {
		_, err = b.ExecContext(ctx, `INSERT INTO message_attachments (message_id, file_id, position)
			SELECT * FROM unnest($1::text[], $2::text[], $3::int[])`, msgs, files, pos)
	} else {
		rows := make([][3]any, len(msgs))
		for k := range msgs {
			rows[k] = [3]any{msgs[k], files[k], pos[k]}
		}
		data, _ := json.Marshal(rows) // strings and integers: cannot fail
		_, err = b.execRepeated(ctx, `INSERT INTO message_attachments (message_id, file_id, position)
			SELECT value->>0, value->>1, value->>2 FROM json_each($1)`, string(data))
	}
	if err != nil {
		return fmt.Errorf("insert attachments: %w", err)
	}
	return nil
}

// loadAttachments fills in the attachments of msgs with one query (deleted messages have none):
// message_attachments joined with the files' metadata by Files.FilesOf.
func (s *Service) loadAttachments(ctx context.Context, q Querier, msgs []*Message) error {
	if s.files == nil { // no files: nothing can be attached
		return nil
	}
	byID := make(map[string]*Message, len(msgs))
	var args []any
	var ph []string
	for _, m := range msgs {
		if m == nil || m.Deleted {
			continue
		}
		byID[m.ID] = m
		args = append(args, m.ID)
		ph = append(ph, "$"+strconv.Itoa(len(args)))
	}
	if len(args) == 0 {
		return nil
	}
	refs, err := s.files.FilesOf(ctx, q, `SELECT message_id AS ref_key, file_id, position FROM message_attachments
		WHERE message_id IN (`+strings.Join(ph, ", ")+`)`, args...)
	if err != nil {
		return fmt.Errorf("load attachments: %w", err)
	}
	for _, r := range refs {
		m := byID[r.Key]
		m.Attachments = append(m.Attachments, r.Attachment)
	}
	return nil
}

// loadPageAttachments fills in the attachments of a slice of messages.
func (s *Service) loadPageAttachments(ctx context.Context, q Querier, msgs []Message) error {
	ptrs := make([]*Message, len(msgs))
	for i := range msgs {
		ptrs[i] = &msgs[i]
	}
	return s.loadAttachments(ctx, q, ptrs)
}

// detachMessages deletes the attachment rows of the messages that where selects (a fixed SQL
// fragment over messages with $1) and returns the files to release once the transaction commits.
func detachMessages(ctx context.Context, tx *sql.Tx, where string, arg any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `DELETE FROM message_attachments
		WHERE message_id IN (SELECT id FROM messages WHERE `+where+`) RETURNING file_id`, arg)
	if err != nil {
		return nil, fmt.Errorf("detach: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("detach: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("detach: %w", err)
	}
	return ids, nil
}

// release releases files whose messages are gone (after the commit that removed their rows). A
// failure only leaves a file counted as attached (it leaks, it is never lost), so it is logged.
func (s *Service) release(ctx context.Context, fileIDs []string) {
	if s.files == nil || len(fileIDs) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	for _, id := range fileIDs {
		if err := s.files.Release(ctx, id); err != nil && !isNotFound(err) {
			s.log.WarnContext(ctx, "chat: could not release an attachment; the file stays stored", "file", id, "err", err)
		}
	}
}

// Queries are the reads chat exports to other features, over its own tables. They need only the
// database, so a feature built before chat (media) can be given them at construction.
type Queries struct{ DB *store.DB }

// CanRead reports whether userID is a member of a chat where a message that is not deleted
// carries fileID: media's Access, for downloads of files the reader does not own.
func (q Queries) CanRead(ctx context.Context, userID, fileID string) (bool, error) {
	var one int
	err := q.DB.R.QueryRowContext(ctx, `SELECT 1 FROM message_attachments a
		JOIN messages m ON m.id = a.message_id
		JOIN chat_members cm ON cm.chat_id = m.chat_id AND cm.user_id = $2
		WHERE a.file_id = $1 AND m.deleted_at IS NULL LIMIT 1`, fileID, userID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("chat: can read %s: %w", fileID, err)
	}
	return true, nil
}

// DeliveredSeq returns userID's delivered_seq in chatID (how far their devices acknowledged the
// chat's messages), and store.ErrNotFound when userID is not a member: push's Chats, which skips
// a message push its member's devices acknowledged meanwhile.
func (q Queries) DeliveredSeq(ctx context.Context, userID, chatID string) (int64, error) {
	var seq int64
	err := q.DB.R.QueryRowContext(ctx, `SELECT delivered_seq FROM chat_members WHERE chat_id = $1 AND user_id = $2`, chatID, userID).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("chat: delivered seq: %w", store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("chat: delivered seq: %w", err)
	}
	return seq, nil
}

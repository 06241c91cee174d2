package chat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/usertext"
)

// SendInput is a new message: the body of POST /chats/{id}/messages, and of send_message with
// chat_id added.
type SendInput struct {
	ClientID      string   `json:"client_id" minLength:"1" maxLength:"64" example:"c-7f3a9e21" doc:"The sender's idempotency key (1-64 characters): sending the same client_id again returns the original message"`
	Kind          Kind     `json:"kind,omitempty" enum:"text,image,video,audio,file,sticker,gif,location" example:"text" doc:"Default: the kind of the first attachment's file when there are attachments, else text. image, video, audio and file carry at least one attachment, sticker and gif at most one, text and location none"`
	Text          string   `json:"text,omitempty" maxLength:"65536" example:"See you at 8!" doc:"The text (at most NERUTALK_WS_MAX_TEXT_CHARS characters, 4,096 by default); required for text, sticker, gif and location"`
	AttachmentIDs []string `json:"attachment_ids,omitempty" maxItems:"10" doc:"Files of the sender's from POST /files (at most 10, no repeats); anything else is 422 invalid_attachment. The chat's members may then download them"`
	ReplyTo       string   `json:"reply_to,omitempty" maxLength:"64" doc:"id of a message of the same chat that this one answers"`
}

// validClientID reports whether id is 1-64 printable characters.
func validClientID(id string) bool {
	if id == "" || !utf8.ValidString(id) || utf8.RuneCountInString(id) > 64 {
		return false
	}
	for _, r := range id {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// checkText validates a message text of kind k.
func (s *Service) checkText(text string, required bool) error {
	if err := usertext.Text.Check(text); err != nil { // no control characters but '\n' and '\t'
		return apperr.Invalid("body.text", err.Error())
	}
	if n := utf8.RuneCountInString(text); n > s.opts.MaxTextChars {
		e := apperr.Invalid("body.text", fmt.Sprintf("at most %d characters, got %d", s.opts.MaxTextChars, n))
		e.Code = "text_too_long"
		return e
	}
	if required && strings.TrimSpace(text) == "" {
		return apperr.Invalid("body.text", "must not be empty")
	}
	return nil
}

// validate checks a new message of sender's, fills in the default kind and returns the metadata
// of its attachments.
func (s *Service) validate(ctx context.Context, sender string, in *SendInput) ([]Attachment, error) {
	if !validClientID(in.ClientID) {
		return nil, apperr.Invalid("body.client_id", "1 to 64 printable characters")
	}
	if in.Kind != "" && !in.Kind.clientKind() {
		return nil, apperr.Invalid("body.kind", "want text, image, video, audio, file, sticker, gif or location")
	}
	if in.ReplyTo != "" && !validID(in.ReplyTo) {
		return nil, apperr.Invalid("body.reply_to", "not a message id")
	}
	// The cheap checks first: the text, before any file is looked up.
	if err := s.checkText(in.Text, false); err != nil {
		return nil, err
	}
	atts, err := s.checkAttachments(ctx, sender, in)
	if err != nil {
		return nil, err
	}
	// A caption is optional; a message without files needs its text (already checked above).
	if len(atts) == 0 && strings.TrimSpace(in.Text) == "" {
		return nil, apperr.Invalid("body.text", "must not be empty")
	}
	return atts, nil
}

// Send stores a message and returns it once it is committed; existed is true when the sender used
// this client_id before, and the message is then the original (nothing is stored or published).
func (s *Service) Send(ctx context.Context, userID, chatID string, in SendInput) (Message, bool, error) {
	o, err := s.checkSend(ctx, userID, chatID, in)
	if err != nil {
		return Message{}, false, err
	}
	res, err := s.submit(ctx, o)
	if err != nil {
		return Message{}, false, err
	}
	return res.msg, res.existed, nil
}

// answer is a committed send's answer: the stored message, or why it was refused. Valid once
// the op is done (or, for an op queued with answered set, once answered is called).
func (o *op) answer() (any, error) {
	if o.res.err != nil {
		return nil, o.res.err
	}
	return o.res.msg, nil
}

// checkSend checks a send (membership, input, attachments, reply) and builds its op.
func (s *Service) checkSend(ctx context.Context, userID, chatID string, in SendInput) (*op, error) {
	if _, _, err := s.memberUnblocked(ctx, chatID, userID); err != nil {
		return nil, err
	}
	atts, err := s.validate(ctx, userID, &in)
	if err != nil {
		return nil, err
	}
	m := Message{
		ID: newID(), ChatID: chatID, SenderID: userID, ClientID: in.ClientID, Kind: in.Kind, Text: in.Text,
		Attachments: atts,
	}
	if in.ReplyTo != "" {
		if _, err := getMessage(ctx, s.db.R, chatID, in.ReplyTo); errors.Is(err, store.ErrNotFound) {
			return nil, invalid("reply_not_found", "body.reply_to", "no such message in this chat")
		} else if err != nil {
			return nil, s.internal("send", err)
		}
		m.ReplyTo = &in.ReplyTo
	}
	return &op{send: &sendOp{msg: m}}, nil
}

// EditInput is the body of PATCH /chats/{id}/messages/{msg_id}.
type EditInput struct {
	Text string `json:"text" maxLength:"65536" doc:"The new text"`
}

// Edit replaces the text of the caller's own message and publishes message_updated. The
// attachments stay; the caption of a file message may become empty.
func (s *Service) Edit(ctx context.Context, userID, chatID, msgID string, in EditInput) (Message, error) {
	if err := s.checkText(in.Text, false); err != nil {
		return Message{}, err
	}
	if _, _, err := s.memberUnblocked(ctx, chatID, userID); err != nil {
		return Message{}, err
	}
	var out Message
	err := s.write(ctx, func(tx *sql.Tx) ([]event, error) {
		m, err := getMessage(ctx, tx, chatID, msgID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, apperr.NotFound("message")
		}
		if err != nil {
			return nil, err
		}
		if m.SenderID != userID {
			return nil, apperr.Forbidden("only the sender edits a message")
		}
		if m.Deleted {
			return nil, apperr.New(apperr.KindConflict, "message_deleted", "the message was deleted")
		}
		if err := s.checkText(in.Text, !m.Kind.needsAttachment()); err != nil {
			return nil, err
		}
		if out, err = editMessage(ctx, tx, chatID, msgID, in.Text, s.now()); err != nil {
			return nil, err
		}
		if err := s.loadAttachments(ctx, tx, []*Message{&out}); err != nil {
			return nil, err
		}
		c, err := getChat(ctx, tx, chatID)
		if err != nil {
			return nil, err
		}
		return []event{{chatID: chatID, typ: EventMessageUpdated, data: out, membersVersion: c.MembersVersion}}, nil
	})
	if err != nil {
		return Message{}, s.internal("edit", err)
	}
	return out, nil
}

// Delete deletes a message for everyone: the sender may, and so may a group's owner and admins.
// The row stays as a tombstone (deleted, no text, no attachments) so seq keeps no gap; deleting it
// again does nothing. Its attachments are removed in the same transaction and their files
// released after the commit (a crash in between leaves a file counted as attached: stored, never
// lost).
func (s *Service) Delete(ctx context.Context, userID, chatID, msgID string) error {
	if _, _, err := s.member(ctx, chatID, userID); err != nil {
		return err
	}
	var released []string
	err := s.write(ctx, func(tx *sql.Tx) ([]event, error) {
		released = nil
		m, err := getMessage(ctx, tx, chatID, msgID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, apperr.NotFound("message")
		}
		if err != nil {
			return nil, err
		}
		c, err := getChat(ctx, tx, chatID)
		if err != nil {
			return nil, err
		}
		if m.SenderID != userID {
			me, err := getMember(ctx, tx, chatID, userID)
			if errors.Is(err, store.ErrNotFound) {
				return nil, apperr.NotFound("chat")
			}
			if err != nil {
				return nil, err
			}
			if c.Type != Group || !me.Role.manages() {
				return nil, apperr.Forbidden("only the sender, or a group's owner and admins, delete a message")
			}
		}
		if m.Deleted {
			return nil, nil
		}
		out, err := tombstone(ctx, tx, chatID, msgID, s.now())
		if err != nil {
			return nil, err
		}
		if released, err = detachMessages(ctx, tx, `id = $1`, msgID); err != nil {
			return nil, err
		}
		return []event{{chatID: chatID, typ: EventMessageDeleted, data: out, membersVersion: c.MembersVersion}}, nil
	})
	if err != nil {
		return s.internal("delete", err)
	}
	s.release(ctx, released)
	return nil
}

// MarkInput is the body of POST /chats/{id}/read and /delivered.
type MarkInput struct {
	Seq int64 `json:"seq" minimum:"0" doc:"The highest seq read (or delivered); marks never move backwards"`
}

// Mark raises the caller's read mark (read true, which raises delivered too) or delivered mark
// to seq and, when it moved, publishes message_read or message_delivered to the members. A seq at
// or below the mark changes nothing; one beyond the chat's last message is refused.
func (s *Service) Mark(ctx context.Context, userID, chatID string, seq int64, read bool) error {
	if seq < 0 {
		return apperr.Invalid("body.seq", "must be at least 0")
	}
	if _, _, err := s.memberUnblocked(ctx, chatID, userID); err != nil {
		return err
	}
	if seq == 0 {
		return nil
	}
	_, err := s.submit(ctx, &op{mark: &markOp{chatID: chatID, userID: userID, seq: seq, read: read}})
	return err
}

// HistoryQuery selects a page of history. With neither bound the page is the latest messages.
type HistoryQuery struct {
	After  int64 // -1: no lower bound
	Before int64 // 0: no upper bound
	Limit  int
	Cursor string // overrides After and Before
}

// History returns the Limit messages nearest the bound (nearest After when both are given), in
// ascending seq order.
func (s *Service) History(ctx context.Context, userID, chatID string, q HistoryQuery) (Page, error) {
	if _, _, err := s.member(ctx, chatID, userID); err != nil {
		return Page{}, err
	}
	if q.Cursor != "" {
		c, err := parseSeqCursor(q.Cursor)
		if err != nil {
			return Page{}, apperr.Invalid("query.cursor", "not a cursor of this list")
		}
		q.After, q.Before = -1, 0
		if c.Forward {
			q.After = c.Seq
		} else {
			q.Before = c.Seq
		}
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	if q.Limit > 200 {
		return Page{}, apperr.Invalid("query.limit", "at most 200")
	}
	if q.After < -1 || q.Before < 0 {
		return Page{}, apperr.Invalid("query", "seq bounds are not negative")
	}
	p := Page{ChatID: chatID}
	var err error
	p.Items, p.HasMore, err = history(ctx, s.db.R, chatID, q.After, q.Before, q.Limit)
	if err != nil {
		return Page{}, s.internal("history", err)
	}
	if err := s.loadPageAttachments(ctx, s.db.R, p.Items); err != nil {
		return Page{}, s.internal("history", err)
	}
	// Read after the page (no read transaction: on SQLite it would take the write lock), so
	// last_seq is at least the page's last seq; a larger one tells the client more arrived.
	if p.LastSeq, err = lastSeq(ctx, s.db.R, chatID); isNotFound(err) {
		return Page{}, apperr.NotFound("chat")
	} else if err != nil {
		return Page{}, s.internal("history", err)
	}
	if p.Items == nil {
		p.Items = []Message{} // an array, never null
	}
	if p.HasMore && len(p.Items) > 0 {
		if q.After >= 0 {
			p.NextCursor = seqCursor{Forward: true, Seq: p.Items[len(p.Items)-1].Seq}.String()
		} else {
			p.NextCursor = seqCursor{Seq: p.Items[0].Seq}.String()
		}
	}
	return p, nil
}

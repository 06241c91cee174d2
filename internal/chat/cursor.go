package chat

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// Cursors are opaque to clients: base64url of a short versioned text.

var errBadCursor = errors.New("chat: malformed cursor")

// chatCursor is a position in a user's chat list: after the chat (At, ID) in the order
// last_message_at DESC, id DESC.
type chatCursor struct {
	At int64
	ID string
}

func (c chatCursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte("c1:" + strconv.FormatInt(c.At, 10) + ":" + c.ID))
}

func parseChatCursor(s string) (chatCursor, error) {
	raw, err := decodeCursor(s, "c1:")
	if err != nil {
		return chatCursor{}, err
	}
	at, id, ok := strings.Cut(raw, ":")
	if !ok || !validID(id) {
		return chatCursor{}, errBadCursor
	}
	n, err := strconv.ParseInt(at, 10, 64)
	if err != nil || n < 0 {
		return chatCursor{}, errBadCursor
	}
	return chatCursor{At: n, ID: id}, nil
}

// seqCursor is a position in a chat's history: after Seq when Forward, else before it.
type seqCursor struct {
	Forward bool
	Seq     int64
}

func (c seqCursor) String() string {
	dir := "b"
	if c.Forward {
		dir = "a"
	}
	return base64.RawURLEncoding.EncodeToString([]byte("s1:" + dir + ":" + strconv.FormatInt(c.Seq, 10)))
}

func parseSeqCursor(s string) (seqCursor, error) {
	raw, err := decodeCursor(s, "s1:")
	if err != nil {
		return seqCursor{}, err
	}
	dir, num, ok := strings.Cut(raw, ":")
	if !ok || (dir != "a" && dir != "b") {
		return seqCursor{}, errBadCursor
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || (dir == "b" && n == 0) {
		return seqCursor{}, errBadCursor
	}
	return seqCursor{Forward: dir == "a", Seq: n}, nil
}

func decodeCursor(s, prefix string) (string, error) {
	if len(s) > 256 {
		return "", errBadCursor
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return "", errBadCursor
	}
	raw, ok := strings.CutPrefix(string(b), prefix)
	if !ok {
		return "", errBadCursor
	}
	return raw, nil
}

// memberCursor is a position in a chat's member list: after the member (JoinedAt, UserID) in
// the order joined_at, user_id.
type memberCursor struct {
	JoinedAt int64 // milliseconds
	UserID   string
}

func (c memberCursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte("m1:" + strconv.FormatInt(c.JoinedAt, 10) + ":" + c.UserID))
}

func parseMemberCursor(s string) (memberCursor, error) {
	raw, err := decodeCursor(s, "m1:")
	if err != nil {
		return memberCursor{}, err
	}
	at, id, ok := strings.Cut(raw, ":")
	if !ok || !validID(id) {
		return memberCursor{}, errBadCursor
	}
	n, err := strconv.ParseInt(at, 10, 64)
	if err != nil || n < 0 {
		return memberCursor{}, errBadCursor
	}
	return memberCursor{JoinedAt: n, UserID: id}, nil
}

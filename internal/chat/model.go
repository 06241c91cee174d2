package chat

import (
	"time"
)

// Type is the kind of chat.
type Type string

// The chat types.
const (
	Direct Type = "direct" // exactly two members, one chat per pair
	Group  Type = "group"  // up to Options.MaxGroupMembers members with roles
)

// Role is a member's role in a chat.
type Role string

// The roles. Owners and admins manage a group's title and members; only the owner changes roles.
const (
	Owner  Role = "owner"
	Admin  Role = "admin"
	Member Role = "member"
)

func (r Role) valid() bool { return r == Owner || r == Admin || r == Member }

// manages reports whether the role may rename the chat and add or remove members.
func (r Role) manages() bool { return r == Owner || r == Admin }

// Kind is the kind of a message.
type Kind string

// The message kinds. image, video, audio and file carry at least one attachment (and an optional
// caption in text); sticker and gif carry one attachment, or their reference in text; location
// carries its reference in text.
const (
	KindText     Kind = "text"
	KindImage    Kind = "image"
	KindVideo    Kind = "video"
	KindAudio    Kind = "audio"
	KindFile     Kind = "file"
	KindSticker  Kind = "sticker"
	KindGIF      Kind = "gif"
	KindLocation Kind = "location"
	KindSystem   Kind = "system" // written by the server, never accepted from clients
)

// needsAttachment reports whether a message of this kind is a file with an optional caption.
func (k Kind) needsAttachment() bool {
	return k == KindImage || k == KindVideo || k == KindAudio || k == KindFile
}

// clientKind reports whether clients may send messages of this kind.
func (k Kind) clientKind() bool {
	switch k {
	case KindText, KindImage, KindVideo, KindAudio, KindFile, KindSticker, KindGIF, KindLocation:
		return true
	}
	return false
}

// MemberInfo is one member of a chat as the API shows it.
type MemberInfo struct {
	UserID   string    `json:"user_id" doc:"The member's user id"`
	Role     Role      `json:"role" enum:"owner,admin,member" doc:"owner and admin manage the title and the members; only the owner changes roles"`
	JoinedAt time.Time `json:"joined_at" doc:"When the user joined the chat"`
}

// Chat is a chat as every member sees it (the data of chat_updated).
type Chat struct {
	ID        string       `json:"id"`
	Type      Type         `json:"type" enum:"direct,group"`
	Title     string       `json:"title" doc:"Empty for direct chats"`
	Members   []MemberInfo `json:"members" doc:"Oldest member first"`
	CreatedAt time.Time    `json:"created_at"`
	LastSeq   int64        `json:"last_seq" doc:"seq of the chat's last message (0 when it has none)"`
}

// ChatChange is the data of chat_updated for the existing members of a large group: the chat
// without its member list, the member count, and what this change did to the members.
type ChatChange struct {
	ID        string    `json:"id"`
	Type      Type      `json:"type" enum:"direct,group"`
	Title     string    `json:"title"`
	CreatedAt time.Time `json:"created_at"`
	LastSeq   int64     `json:"last_seq"`
	// Partial is always true: members is left out; apply the deltas (or GET /chats/{id}).
	Partial        bool         `json:"partial"`
	MemberCount    int          `json:"member_count"`
	MembersAdded   []MemberInfo `json:"members_added,omitempty"`
	MembersRemoved []string     `json:"members_removed,omitempty"`
	MembersUpdated []MemberInfo `json:"members_updated,omitempty" doc:"Members whose role changed"`
}

// ChatView is a chat with the caller's own state in it.
type ChatView struct {
	Chat
	ReadSeq      int64    `json:"read_seq" doc:"The caller has read every message up to this seq"`
	DeliveredSeq int64    `json:"delivered_seq" doc:"Every message up to this seq reached one of the caller's devices"`
	UnreadCount  int64    `json:"unread_count" doc:"last_seq - read_seq"`
	LastMessage  *Message `json:"last_message" doc:"The chat's last message, null when it has none"`
	ActiveCall   *string  `json:"active_call" doc:"id of the chat's ringing or active call (GET /calls/{id}; join it with POST /calls/{id}/join), null when none. Filled by GET /chats and GET /chats/{id}"`
}

// Attachment is a file attached to a message: the metadata and URLs of the file from POST /files.
type Attachment struct {
	ID           string `json:"id" doc:"The file's id"`
	Kind         string `json:"kind" enum:"image,video,audio,file" doc:"What the content is"`
	MimeType     string `json:"mime_type" doc:"The type of the stored bytes"`
	Size         int64  `json:"size" doc:"Size of the stored bytes"`
	Name         string `json:"name" doc:"The sanitized file name"`
	Width        int    `json:"width,omitempty" doc:"Images: width in pixels"`
	Height       int    `json:"height,omitempty" doc:"Images: height in pixels"`
	URL          string `json:"url" doc:"Where members of the chat download it (bearer token, or ?token=)"`
	ThumbnailURL string `json:"thumbnail_url,omitempty" doc:"Images: a preview that fits in 320 x 320"`
}

// Message is one message of a chat (the data of message_new, message_updated and message_deleted).
type Message struct {
	ID          string       `json:"id"`
	ChatID      string       `json:"chat_id"`
	Seq         int64        `json:"seq" doc:"1, 2, 3... in each chat, without gaps"`
	SenderID    string       `json:"sender_id"`
	ClientID    string       `json:"client_id" doc:"The sender's idempotency key"`
	Kind        Kind         `json:"kind" enum:"text,image,video,audio,file,sticker,gif,location,system"`
	Text        string       `json:"text"`
	Attachments []Attachment `json:"attachments" doc:"The files it carries, in the order sent"`
	ReplyTo     *string      `json:"reply_to" doc:"id of the message this one answers, null when none"`
	CreatedAt   time.Time    `json:"created_at"`
	EditedAt    *time.Time   `json:"edited_at" doc:"null until the message is edited"`
	Deleted     bool         `json:"deleted" doc:"Deleted for everyone: text and attachments are gone, the seq stays"`
}

// Receipt is one member's high-water marks.
type Receipt struct {
	UserID       string `json:"user_id"`
	ReadSeq      int64  `json:"read_seq"`
	DeliveredSeq int64  `json:"delivered_seq"`
}

// ReceiptEvent is the data of message_read and message_delivered.
type ReceiptEvent struct {
	ChatID string `json:"chat_id"`
	UserID string `json:"user_id"`
	Seq    int64  `json:"seq"`
}

// TypingEvent is the data of typing_indicator sent to clients.
type TypingEvent struct {
	ChatID string `json:"chat_id"`
	UserID string `json:"user_id"`
	Typing bool   `json:"typing"`
}

// Page is a page of messages: the answer of GET /chats/{id}/messages and the ack of sync.
type Page struct {
	ChatID     string    `json:"chat_id"`
	Items      []Message `json:"items" doc:"Ascending seq"`
	HasMore    bool      `json:"has_more" doc:"More messages lie beyond this page in the direction of paging"`
	NextCursor string    `json:"next_cursor,omitempty" doc:"Pass as cursor to fetch the next page; empty at the end"`
	LastSeq    int64     `json:"last_seq" doc:"The chat's last seq when the page was read"`
}

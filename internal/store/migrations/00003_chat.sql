-- Chats, their members and their messages (package internal/chat).
--
-- Every message of a chat has a seq: 1, 2, 3... with no gaps. chats.last_seq is the last one given
-- out; the sending transaction raises it (UPDATE ... RETURNING) and inserts the messages with the
-- seqs it reserved, so a seq is never lost. Receipts are high-water marks per member (read_seq,
-- delivered_seq): unread_count = last_seq - read_seq, with no per-message receipt rows.

-- +goose Up
CREATE TABLE chats (
    id              TEXT PRIMARY KEY,
    type            TEXT NOT NULL CHECK (type IN ('direct', 'group')),
    title           TEXT NOT NULL DEFAULT '',
    -- "<smaller user id>:<larger user id>" for a direct chat, NULL for a group: one direct chat per pair.
    direct_key      TEXT UNIQUE,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    last_seq        BIGINT NOT NULL DEFAULT 0,
    -- Time of the last message (created_at until the first one): GET /chats sorts by it.
    last_message_at BIGINT NOT NULL
);

CREATE TABLE chat_members (
    chat_id       TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at     BIGINT NOT NULL,
    read_seq      BIGINT NOT NULL DEFAULT 0,
    delivered_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, user_id)
);

-- A user's chats (GET /chats, contacts for presence).
CREATE INDEX chat_members_user ON chat_members (user_id, chat_id);

CREATE TABLE messages (
    id         TEXT PRIMARY KEY,
    chat_id    TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    -- No foreign key to users: a message outlives its sender's account.
    sender_id  TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('text', 'image', 'video', 'audio', 'file', 'sticker', 'gif', 'location', 'system')),
    text       TEXT NOT NULL DEFAULT '',
    -- A message of the same chat (checked by the application; messages are only removed with their chat).
    reply_to   TEXT,
    created_at BIGINT NOT NULL,
    edited_at  BIGINT,
    -- Set when the message was deleted for everyone: the row stays as a tombstone so seq has no gap.
    deleted_at BIGINT,
    -- History paging (before_seq / after_seq) and the last message of a chat use this index.
    UNIQUE (chat_id, seq),
    -- Idempotent send: a retry with the same client_id returns the original message.
    UNIQUE (sender_id, client_id)
);

-- +goose Down
DROP TABLE messages;
DROP TABLE chat_members;
DROP TABLE chats;

-- A counter of changes to a chat's members (package internal/chat). Every transaction that changes
-- the members, their roles or the title raises it (lockChat), and every transaction that stores
-- messages reads it when it reserves their seqs. A node whose cached member list is older than
-- the counter a message was stored with reloads the list before it delivers the message, so no
-- node delivers a message to a member removed before it was sent, whatever its cache says.

-- +goose Up
ALTER TABLE chats ADD COLUMN members_version BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE chats DROP COLUMN members_version;

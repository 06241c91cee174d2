-- Who may add a user to groups, invitations, and blocking (issue 16, item 5; package
-- internal/chat, the setting itself is read and written by internal/auth's profile routes).
--
-- users.group_adds: who may add the user to a group directly. everyone; contacts (users who
-- share a chat with them already); nobody. Anyone else who adds them makes a group_invitations
-- row instead, which the user accepts or declines.
--
-- user_blocks: blocker_id blocked blocked_id. Read in both directions (a DM, a call, presence
-- and location are refused either way), hence the index on blocked_id.

-- +goose Up
ALTER TABLE users ADD COLUMN group_adds TEXT NOT NULL DEFAULT 'everyone'
    CHECK (group_adds IN ('everyone', 'contacts', 'nobody'));

CREATE TABLE user_blocks (
    blocker_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
);
CREATE INDEX user_blocks_blocked ON user_blocks (blocked_id);

CREATE TABLE group_invitations (
    id         TEXT PRIMARY KEY,
    chat_id    TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    inviter_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    invitee_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    UNIQUE (chat_id, invitee_id)
);
CREATE INDEX group_invitations_invitee ON group_invitations (invitee_id, id);

-- +goose Down
DROP TABLE group_invitations;
DROP TABLE user_blocks;
ALTER TABLE users DROP COLUMN group_adds;

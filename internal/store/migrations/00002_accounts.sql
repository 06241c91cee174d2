-- +goose Up
-- Accounts: users and their signed-in sessions. One text for SQLite and PostgreSQL.
--
-- username and email are stored lower-case, so their UNIQUE constraints make them unique
-- case-insensitively. username_key and display_key hold the hex encoding of the lower-case
-- username and display name: a prefix search becomes the range scan
-- `key >= hex(prefix) AND key < hex(prefix) || 'g'` on a plain B-tree index, which both engines
-- can use and which compares bytewise under every collation (hex digits sort the same everywhere),
-- where LIKE 'p%' needs a C collation or text_pattern_ops on PostgreSQL and NOCASE on SQLite.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    email         TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    bio           TEXT NOT NULL DEFAULT '',
    avatar_url    TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    username_key  TEXT NOT NULL,
    display_key   TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX users_username_search ON users (username_key);
CREATE INDEX users_display_search ON users (display_key);

-- A session is one signed-in device. refresh_hash is the SHA-256 (hex) of its current refresh
-- token; the tokens it has rotated out are kept in refresh_history so that presenting one again
-- is recognised as reuse and revokes the session.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    refresh_hash TEXT NOT NULL UNIQUE,
    device_name  TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT '',
    ip           TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id, id);

CREATE TABLE refresh_history (
    hash       TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    rotated_at BIGINT NOT NULL
);
CREATE INDEX refresh_history_session ON refresh_history (session_id);

-- +goose Down
DROP TABLE refresh_history;
DROP TABLE sessions;
DROP TABLE users;

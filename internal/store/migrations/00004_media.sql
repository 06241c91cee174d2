-- Media (package internal/media): uploaded files and the stored contents behind them.
--
-- media_blobs has one row per distinct upload content, keyed by the SHA-256 of the bytes the client
-- sent (source_sha256): identical uploads are stored once. Its reference count is the number of
-- files rows pointing at it (the count is derived, never stored, so no path - user deletion
-- cascading to files included - can leave it wrong); the row and its objects go when the last
-- file does, and the orphan sweep removes rows that a cascade left without files.
-- files has one row per upload: its owner, its sanitized name and how many messages attach it.

-- +goose Up
CREATE TABLE media_blobs (
    source_sha256 TEXT PRIMARY KEY,          -- hex SHA-256 of the uploaded bytes (dedup key)
    sha256        TEXT NOT NULL,             -- hex SHA-256 of the stored bytes (images are re-encoded)
    storage_key   TEXT NOT NULL,             -- blob store key of the content
    mime_type     TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('image', 'video', 'audio', 'file')),
    size          BIGINT NOT NULL,
    width         INTEGER,                   -- images only
    height        INTEGER,
    thumb_key     TEXT NOT NULL DEFAULT '',  -- '' = no thumbnail
    thumb_mime    TEXT NOT NULL DEFAULT '',
    thumb_size    BIGINT NOT NULL DEFAULT 0,
    thumb_width   INTEGER,
    thumb_height  INTEGER,
    created_at    BIGINT NOT NULL
);

CREATE TABLE files (
    id            TEXT PRIMARY KEY,
    owner_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source_sha256 TEXT NOT NULL REFERENCES media_blobs (source_sha256),
    name          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    attach_count  BIGINT NOT NULL DEFAULT 0, -- messages referencing the file now
    attached_at   BIGINT                     -- first attachment; NULL = never attached (an orphan candidate)
);
CREATE INDEX files_owner ON files (owner_id, created_at);
CREATE INDEX files_source ON files (source_sha256);
CREATE INDEX files_unattached ON files (created_at) WHERE attached_at IS NULL;

-- +goose Down
DROP TABLE files;
DROP TABLE media_blobs;

-- Calls: their lifecycle and participants (package internal/call). NeruTalk carries no media; it
-- keeps each call's state and hands participants credentials for a media provider.
--
-- Every transition starts with one conditional UPDATE of the call's row (... WHERE status IN
-- ('ringing', 'active')): on PostgreSQL it takes the row lock, on SQLite the single writer is
-- the lock, so two answers, an answer and a hang-up, a ring timeout and an answer, or two nodes'
-- sweepers each end in exactly one valid state.

-- +goose Up
CREATE TABLE calls (
    id            TEXT PRIMARY KEY,
    chat_id       TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('audio', 'video')),
    -- ringing -> active -> ended; ringing -> missed | declined | ended (cancelled).
    status        TEXT NOT NULL CHECK (status IN ('ringing', 'active', 'ended', 'missed', 'declined')),
    initiator_id  TEXT NOT NULL,
    provider      TEXT NOT NULL,
    channel       TEXT NOT NULL,
    -- direct calls end as soon as one side leaves; group calls when the last participant leaves.
    is_group      BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL,
    ring_deadline BIGINT NOT NULL,
    answered_at   BIGINT,
    ended_at      BIGINT,
    ended_by      TEXT,
    end_reason    TEXT CHECK (end_reason IN ('completed', 'missed', 'declined', 'cancelled', 'failed')),
    -- raised by every transition (the lock statement)
    version       BIGINT NOT NULL DEFAULT 0
);

-- One live call per chat: a second POST /calls fails on this index and answers the live one.
CREATE UNIQUE INDEX calls_live_chat ON calls (chat_id) WHERE status IN ('ringing', 'active');
-- The sweepers: ringing calls past their deadline, and live calls.
CREATE INDEX calls_live ON calls (status, ring_deadline) WHERE status IN ('ringing', 'active');
CREATE INDEX calls_chat ON calls (chat_id, id);

CREATE TABLE call_participants (
    call_id    TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    -- Agora's numeric uid, stable within the call (1, 2, 3... in the order of the rows).
    uid        BIGINT NOT NULL,
    -- invited (ringing for them), joined, declined, left
    state      TEXT NOT NULL CHECK (state IN ('invited', 'joined', 'declined', 'left')),
    -- The session (device) that answered or joined.
    session_id TEXT NOT NULL DEFAULT '',
    joined_at  BIGINT,
    left_at    BIGINT,
    PRIMARY KEY (call_id, user_id),
    UNIQUE (call_id, uid)
);

-- A user's history (GET /calls) and their live participations (liveness).
CREATE INDEX call_participants_user ON call_participants (user_id, call_id);

-- +goose Down
DROP TABLE call_participants;
DROP TABLE calls;

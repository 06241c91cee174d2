-- Location: live positions, history, time-boxed shares and geofences (package internal/location).
--
-- location_users has one row per user who sent a position or changed a setting: the latest
-- position (the newest recorded_at wins), the settings, and the spatial index of nearby: cell is
-- the S2 leaf cell id of the position, shifted to a signed BIGINT that keeps the order of cell
-- ids, so that "every position within this disc" is a few BETWEEN ranges on an ordinary index,
-- identical on SQLite and PostgreSQL. Only discoverable users are in that index.

-- +goose Up
CREATE TABLE location_users (
    user_id        TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    discoverable   BOOLEAN NOT NULL DEFAULT FALSE,
    retention_days INTEGER NOT NULL DEFAULT 7,
    has_position   BOOLEAN NOT NULL DEFAULT FALSE,
    lat            DOUBLE PRECISION NOT NULL DEFAULT 0,
    lng            DOUBLE PRECISION NOT NULL DEFAULT 0,
    accuracy_m     DOUBLE PRECISION,
    heading        DOUBLE PRECISION,
    speed          DOUBLE PRECISION,
    recorded_at    BIGINT NOT NULL DEFAULT 0,
    cell           BIGINT NOT NULL DEFAULT 0,
    -- recorded_at of the last point stored in location_history (the throttle).
    history_at     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX location_users_nearby ON location_users (cell) WHERE discoverable AND has_position;

-- Stored points, kept for the owner's retention_days.
CREATE TABLE location_history (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    recorded_at BIGINT NOT NULL,
    lat         DOUBLE PRECISION NOT NULL,
    lng         DOUBLE PRECISION NOT NULL,
    accuracy_m  DOUBLE PRECISION,
    heading     DOUBLE PRECISION,
    speed       DOUBLE PRECISION,
    PRIMARY KEY (user_id, recorded_at)
);
CREATE INDEX location_history_time ON location_history (recorded_at);

-- A share of owner_id's location with one user or with a chat's members. The expiry job moves an
-- active share past expires_at to 'expired' with one conditional UPDATE ... RETURNING, so each
-- share expires once, on whichever node gets there first.
CREATE TABLE location_shares (
    id             TEXT PRIMARY KEY,
    owner_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_id        TEXT REFERENCES users (id) ON DELETE CASCADE,
    chat_id        TEXT REFERENCES chats (id) ON DELETE CASCADE,
    precision_mode TEXT NOT NULL CHECK (precision_mode IN ('exact', 'approximate')),
    status         TEXT NOT NULL CHECK (status IN ('active', 'stopped', 'expired')),
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT, -- NULL: until stopped
    ended_at       BIGINT,
    CHECK ((user_id IS NULL) <> (chat_id IS NULL))
);
CREATE INDEX location_shares_owner ON location_shares (owner_id) WHERE status = 'active';
CREATE INDEX location_shares_user ON location_shares (user_id) WHERE status = 'active';
CREATE INDEX location_shares_chat ON location_shares (chat_id) WHERE status = 'active';
CREATE INDEX location_shares_expiry ON location_shares (expires_at) WHERE status = 'active';
CREATE INDEX location_shares_ended ON location_shares (ended_at) WHERE status <> 'active';

-- A user's geofences, with the user's state in each (inside, since when, dwell reported). The
-- state changes only by conditional UPDATEs (... WHERE inside = FALSE), so two nodes handling
-- updates of the same user report a transition once.
CREATE TABLE geofences (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    shape      TEXT NOT NULL, -- JSON: {"center":{"lat","lng"},"radius_m"} or {"polygon":[[lat,lng],...]}
    notify     TEXT NOT NULL CHECK (notify IN ('owner', 'viewers')),
    dwell_s    BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    inside     BOOLEAN NOT NULL DEFAULT FALSE,
    entered_at BIGINT NOT NULL DEFAULT 0,
    dwell_sent BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX geofences_user ON geofences (user_id, id);
CREATE INDEX geofences_inside ON geofences (user_id) WHERE inside;

-- The cell index of geofences: the S2 cells (levels 6 to 18) that cover each fence. A position
-- looks up its own cell at each of those levels, so the fences to check are found by key, however
-- many the user has.
CREATE TABLE geofence_cells (
    user_id  TEXT NOT NULL,
    cell     BIGINT NOT NULL,
    fence_id TEXT NOT NULL REFERENCES geofences (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, cell, fence_id)
);
CREATE INDEX geofence_cells_fence ON geofence_cells (fence_id);

CREATE TABLE geofence_events (
    id          TEXT PRIMARY KEY,
    geofence_id TEXT NOT NULL REFERENCES geofences (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    type        TEXT NOT NULL CHECK (type IN ('enter', 'exit', 'dwell')),
    at          BIGINT NOT NULL
);
CREATE INDEX geofence_events_fence ON geofence_events (geofence_id, id);
CREATE INDEX geofence_events_at ON geofence_events (at);

-- +goose Down
DROP TABLE geofence_events;
DROP TABLE geofence_cells;
DROP TABLE geofences;
DROP TABLE location_shares;
DROP TABLE location_history;
DROP TABLE location_users;

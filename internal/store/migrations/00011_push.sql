-- Push notifications (package internal/push): devices, the durable outbox, preferences and
-- templates.
--
-- push_outbox holds two kinds of rows. A notification (device_id NULL) is addressed to a user: a
-- feature writes it inside the transaction that stores its cause, and a burst of messages of one
-- chat collapses into the one queued row of (user_id, collapse_key) with a growing count. A
-- worker expands a due notification into one delivery per device (device_id set, parent_id the
-- notification) or skips it (the user was online or had read it, muted chat, do-not-disturb...).
-- Deliveries are sent through the device's provider, retried with backoff and marked dead after
-- the last attempt. Workers claim rows by setting status 'sending' with a lease (FOR UPDATE SKIP
-- LOCKED on PostgreSQL); a row whose lease ran out (its node died) is claimed again.

-- +goose Up
CREATE TABLE push_devices (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The session that registered it: revoking the session removes the device.
    session_id  TEXT NOT NULL DEFAULT '',
    platform    TEXT NOT NULL CHECK (platform IN ('android', 'ios', 'web')),
    provider    TEXT NOT NULL CHECK (provider IN ('fcm', 'apns', 'webpush')),
    -- FCM registration token, APNs device token, or the Web Push endpoint.
    token       TEXT NOT NULL,
    voip_token  TEXT NOT NULL DEFAULT '',
    p256dh      TEXT NOT NULL DEFAULT '',
    auth        TEXT NOT NULL DEFAULT '',
    app_id      TEXT NOT NULL DEFAULT '',
    locale      TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (provider, token)
);
CREATE INDEX push_devices_user ON push_devices (user_id);
CREATE INDEX push_devices_session ON push_devices (session_id);

CREATE TABLE push_outbox (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id       TEXT,            -- NULL: a notification to expand; set: a delivery to one device
    parent_id       TEXT,            -- the notification a delivery came from
    type            TEXT NOT NULL,   -- message, mention, call, call_cancel, geofence, admin...
    chat_id         TEXT,
    seq             BIGINT NOT NULL DEFAULT 0,   -- the latest message seq it announces
    count           INTEGER NOT NULL DEFAULT 1,  -- messages collapsed into it
    mentioned       BOOLEAN NOT NULL DEFAULT FALSE,
    payload         TEXT NOT NULL,   -- JSON: the template values and the data for the app
    collapse_key    TEXT,
    provider        TEXT NOT NULL DEFAULT '',    -- deliveries: fcm, apns or webpush (for stats)
    platform_filter TEXT NOT NULL DEFAULT '',    -- broadcasts: only devices of this platform
    locale_filter   TEXT NOT NULL DEFAULT '',    -- broadcasts: only devices whose locale starts so
    status          TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'dead', 'skipped')),
    error_code      TEXT NOT NULL DEFAULT '',    -- invalid_token, permanent, retries_exhausted, or why skipped
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT NOT NULL DEFAULT '',
    lease_until     BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
-- What workers claim: due queued rows, and rows whose lease ran out.
CREATE INDEX push_outbox_due ON push_outbox (next_attempt_at) WHERE status = 'queued';
CREATE INDEX push_outbox_leased ON push_outbox (lease_until) WHERE status = 'sending';
-- A burst collapses into the one queued notification per user and key.
CREATE UNIQUE INDEX push_outbox_collapse ON push_outbox (user_id, collapse_key)
    WHERE status = 'queued' AND device_id IS NULL;
-- GET /notifications (own history) and the stats over a period.
CREATE INDEX push_outbox_history ON push_outbox (user_id, id) WHERE device_id IS NULL;
CREATE INDEX push_outbox_created ON push_outbox (created_at);
CREATE INDEX push_outbox_parent ON push_outbox (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE push_chat_prefs (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chat_id     TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    mode        TEXT NOT NULL CHECK (mode IN ('all', 'mentions', 'none')),
    muted_until BIGINT,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, chat_id)
);

CREATE TABLE push_user_settings (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    previews   BOOLEAN NOT NULL DEFAULT TRUE,
    dnd_start  INTEGER,              -- minutes after midnight in timezone; NULL = no window
    dnd_end    INTEGER,
    timezone   TEXT NOT NULL DEFAULT 'UTC',
    updated_at BIGINT NOT NULL
);

CREATE TABLE push_templates (
    type       TEXT NOT NULL,
    locale     TEXT NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (type, locale)
);

-- +goose Down
DROP TABLE push_templates;
DROP TABLE push_user_settings;
DROP TABLE push_chat_prefs;
DROP TABLE push_outbox;
DROP TABLE push_devices;

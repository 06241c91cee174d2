-- Files attached to messages (package internal/chat; the files are internal/media's).
--
-- One row per attached file, in the order the sender listed them (position 0, 1, ...). file_id has
-- no foreign key: a file goes with its owner's account (files.owner_id cascades) and the
-- attachment then simply stops showing. The rows of a message are inserted in the transaction
-- that stores the message, which also raises files.attach_count of each file; deleting a message
-- for everyone deletes its rows and then releases the files (media decrements the count and
-- deletes the file after the last release).

-- +goose Up
CREATE TABLE message_attachments (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    file_id    TEXT NOT NULL,
    position   INTEGER NOT NULL,
    PRIMARY KEY (message_id, file_id)
);

-- Who may read a file (the members of the chats where it was sent).
CREATE INDEX message_attachments_file ON message_attachments (file_id);

-- +goose Down
DROP TABLE message_attachments;

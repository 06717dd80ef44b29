-- Text messages accepted for users (RFC 3428 MESSAGE), kept until every device owed one got
-- it, or until they expire. A delivery row names a device still owed the message; '*' means
-- whichever device of the recipient registers first (the user had none known).
CREATE TABLE messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient    TEXT NOT NULL,
    sender       TEXT NOT NULL,
    content_type TEXT NOT NULL,
    body         BLOB NOT NULL,
    accepted_at  INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX messages_recipient ON messages (recipient, id);
CREATE INDEX messages_expiry ON messages (expires_at);

CREATE TABLE deliveries (
    message_id INTEGER NOT NULL REFERENCES messages (id),
    device     TEXT NOT NULL,
    PRIMARY KEY (message_id, device)
);

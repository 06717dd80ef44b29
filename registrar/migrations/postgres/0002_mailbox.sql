-- Text messages accepted for users (RFC 3428 MESSAGE), kept until every device owed one got
-- it, or until they expire. A delivery row names a device still owed the message; '*' means
-- whichever device of the recipient registers first (the user had none known).
CREATE TABLE messages (
    id           BIGSERIAL PRIMARY KEY,
    recipient    TEXT NOT NULL,
    sender       TEXT NOT NULL,
    content_type TEXT NOT NULL,
    body         BYTEA NOT NULL,
    accepted_at  BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX messages_recipient ON messages (recipient, id);
CREATE INDEX messages_expiry ON messages (expires_at);

CREATE TABLE deliveries (
    message_id BIGINT NOT NULL REFERENCES messages (id),
    device     TEXT NOT NULL,
    PRIMARY KEY (message_id, device)
);

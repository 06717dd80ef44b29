-- Phones set up from a link (issue #21): one-time tokens for remote provisioning. Only the
-- SHA-256 of a token is kept, so the database alone does not let anyone fetch a config.
CREATE TABLE provisioning_tokens (
    token_hash TEXT PRIMARY KEY,
    aor        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

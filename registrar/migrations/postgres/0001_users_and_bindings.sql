-- Users keep only HA1 values; bindings are the registrar's journal of the location table.
CREATE TABLE users (
    aor        TEXT PRIMARY KEY NOT NULL,
    ha1_md5    TEXT NOT NULL,
    ha1_sha256 TEXT NOT NULL
);

CREATE TABLE bindings (
    aor         TEXT NOT NULL,
    binding_key TEXT NOT NULL,
    contact     TEXT NOT NULL,
    instance    TEXT,
    reg_id      BIGINT,
    expires_at  BIGINT NOT NULL,
    q           BIGINT NOT NULL,
    call_id     TEXT NOT NULL,
    cseq        BIGINT NOT NULL,
    source      TEXT NOT NULL,
    PRIMARY KEY (aor, binding_key)
);
CREATE INDEX bindings_expiry ON bindings (expires_at);

-- A counter a running server polls to notice user changes made by `openline user`.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value BIGINT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('users_version', 0);

-- What each user PUBLISHed (RFC 3903), shared by the nodes of a cluster (issue #9): a
-- PUBLISH taken by one node shows at every node, and its refresh may come through another.
CREATE TABLE publications (
    aor        TEXT PRIMARY KEY NOT NULL,
    etag       TEXT NOT NULL,
    open       INTEGER NOT NULL,
    note       TEXT,
    expires_at BIGINT NOT NULL
);

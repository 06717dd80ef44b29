-- Presence (issue #8): who may see whom from another domain. A row is written when the
-- presentity first writes to or calls the watcher (explicit = 0), or by `openline presence
-- allow` (explicit = 1).
CREATE TABLE presence_allowed (
    presentity TEXT NOT NULL,
    watcher    TEXT NOT NULL,
    since      BIGINT NOT NULL,
    explicit   INTEGER NOT NULL,
    PRIMARY KEY (presentity, watcher)
);

-- A stored message may be a copy of what the mailbox's owner sent from another device (issue
-- #5, multi-device sync): sent_to names whom it went to.
ALTER TABLE messages ADD COLUMN sent_to TEXT;

-- The devices each user has registered lately: a message is owed to every one of them, the
-- offline ones included. seen_at is refreshed at most daily; devices unseen for the mailbox
-- expiry are forgotten.
CREATE TABLE devices (
    aor     TEXT NOT NULL,
    device  TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (aor, device)
);

-- Scale-out (issue #9). A binding names the node that holds the device's flow ('' when the
-- server runs alone); nodes say where they take requests from each other and when they last
-- said they live. A delivery may be claimed by the node handing it to a device, until a time;
-- a message keeps the key of the request that brought it (Call-ID, CSeq, From tag), so the
-- same request retried through another node is stored once.
ALTER TABLE bindings ADD COLUMN node TEXT NOT NULL DEFAULT '';
CREATE TABLE nodes (
    name    TEXT PRIMARY KEY NOT NULL,
    address TEXT NOT NULL,
    seen_at BIGINT NOT NULL
);
ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
ALTER TABLE deliveries ADD COLUMN claimed_until BIGINT;
ALTER TABLE messages ADD COLUMN request_key TEXT;
CREATE UNIQUE INDEX messages_request ON messages (recipient, request_key);

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

-- Every change to bindings and to the mailbox is told to the other nodes (LISTEN/NOTIFY) in
-- the transaction that makes it, so they need not poll. The writer is the connection's
-- application_name: its node name. A binding row goes whole in the payload, unless too large
-- for NOTIFY's 8,000 bytes: then only its address of record, to be read again.
CREATE FUNCTION openline_binding_changed() RETURNS trigger AS $$
DECLARE
    payload TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        payload := json_build_object('writer', current_setting('application_name'), 'op', 'delete',
            'aor', OLD.aor, 'binding_key', OLD.binding_key)::text;
    ELSE
        payload := json_build_object('writer', current_setting('application_name'), 'op', 'upsert',
            'aor', NEW.aor, 'row', row_to_json(NEW))::text;
        IF octet_length(payload) > 7900 THEN
            payload := json_build_object('writer', current_setting('application_name'), 'op', 'reload',
                'aor', NEW.aor)::text;
        END IF;
    END IF;
    PERFORM pg_notify('openline_bindings', payload);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER bindings_changed AFTER INSERT OR UPDATE OR DELETE ON bindings
    FOR EACH ROW EXECUTE FUNCTION openline_binding_changed();

CREATE FUNCTION openline_mail_changed() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('openline_mail', json_build_object('writer', current_setting('application_name'),
            'op', 'gone', 'recipient', OLD.recipient)::text);
    ELSE
        PERFORM pg_notify('openline_mail', json_build_object('writer', current_setting('application_name'),
            'op', 'stored', 'recipient', NEW.recipient)::text);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER messages_changed AFTER INSERT OR DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION openline_mail_changed();

-- Who may see whom across domains: written when a user first writes to or calls someone,
-- through whichever node.
CREATE FUNCTION openline_presence_changed() RETURNS trigger AS $$
DECLARE
    r RECORD;
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    PERFORM pg_notify('openline_presence', json_build_object('writer', current_setting('application_name'),
        'op', lower(TG_OP), 'presentity', r.presentity, 'watcher', r.watcher)::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER presence_allowed_changed AFTER INSERT OR DELETE ON presence_allowed
    FOR EACH ROW EXECUTE FUNCTION openline_presence_changed();

-- Users (the version counter moves) and nodes (one starts or stops): the channel is the
-- trigger's argument.
CREATE FUNCTION openline_table_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER users_changed AFTER UPDATE ON meta
    FOR EACH ROW EXECUTE FUNCTION openline_table_changed('openline_users');
CREATE TRIGGER nodes_changed AFTER INSERT OR DELETE ON nodes
    FOR EACH ROW EXECUTE FUNCTION openline_table_changed('openline_nodes');
-- A heartbeat is news only when the node moved or comes back after it was taken for dead
-- (silent 10 s: ALIVE_FOR in proxy/src/server/cluster.rs).
CREATE TRIGGER nodes_back AFTER UPDATE ON nodes
    FOR EACH ROW WHEN (OLD.address IS DISTINCT FROM NEW.address OR NEW.seen_at > OLD.seen_at + 10)
    EXECUTE FUNCTION openline_table_changed('openline_nodes');

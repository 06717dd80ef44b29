-- What each user PUBLISHed (RFC 3903), shared by the nodes of a cluster (issue #9): a
-- PUBLISH taken by one node shows at every node, and its refresh may come through another.
CREATE TABLE publications (
    aor        TEXT PRIMARY KEY NOT NULL,
    etag       TEXT NOT NULL,
    open       INTEGER NOT NULL,
    note       TEXT,
    expires_at BIGINT NOT NULL
);

CREATE FUNCTION openline_publication_changed() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('openline_presence', json_build_object('writer', current_setting('application_name'),
            'op', 'unpublished', 'presentity', OLD.aor)::text);
    ELSE
        PERFORM pg_notify('openline_presence', json_build_object('writer', current_setting('application_name'),
            'op', 'published', 'presentity', NEW.aor, 'etag', NEW.etag, 'open', NEW.open <> 0,
            'note', NEW.note, 'expires_at', NEW.expires_at)::text);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER publications_changed AFTER INSERT OR UPDATE OR DELETE ON publications
    FOR EACH ROW EXECUTE FUNCTION openline_publication_changed();

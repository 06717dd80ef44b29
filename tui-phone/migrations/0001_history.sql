-- The phone's own history: its contacts and what was written with each.
CREATE TABLE IF NOT EXISTS contacts (
    aor TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS lines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    contact TEXT NOT NULL REFERENCES contacts(aor),
    mine INTEGER NOT NULL,
    text TEXT NOT NULL,
    date TEXT
);
CREATE INDEX IF NOT EXISTS lines_by_contact ON lines (contact, id);

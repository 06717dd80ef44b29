//! Persistence behind narrow seams: users, bindings. SQLite is the default back-end, PostgreSQL
//! the one for several nodes, memory the one for tests.

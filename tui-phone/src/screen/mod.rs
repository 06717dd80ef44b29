//! The full-screen phone (ratatui): `app.rs` what is shown and what keys mean, `view.rs` how it
//! is drawn, `history.rs` the conversations kept in SQLite under the data directory.

pub mod app;
pub mod history;
pub mod view;

//! tui-phone (issue #7): a terminal softphone over the whole Openline stack. So far: the
//! sans-IO user agent's registration (`ua`).

pub mod ua;

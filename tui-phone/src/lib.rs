//! tui-phone (issue #7): a terminal softphone over the whole Openline stack. So far: the
//! sans-IO user agent (`ua`: registration, text) and the phone that composes them (`phone`).

pub mod audio;
pub mod driver;
pub mod phone;
pub mod screen;
pub mod ua;

//! Fuzz body for the config file (issue #24): any text is read or refused with a place in
//! the file, never a panic. `fuzz/` runs it under libFuzzer.

use crate::config::{ConfigError, parse};
use std::path::Path;

/// `data` as a config file: refused at a line and column that are in it, or read.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(ConfigError::Invalid { line, column, .. }) = parse(Path::new("fuzz.toml"), text) {
        let lines = text.split('\n').count();
        assert!(
            (1..=lines).contains(&line) && column >= 1,
            "refused at {line}:{column}, outside a file of {lines} lines"
        );
    }
}

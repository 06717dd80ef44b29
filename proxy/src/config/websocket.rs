//! The `[websocket]` table (issue #23): which web pages may open SIP WebSockets to the `ws:`
//! and `wss:` listeners, and how large one message may be.

use openline_sip_net::WebSocketPolicy;
use serde::Deserialize;

/// `[websocket]` as TOML gives it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebSocket {
    origins: Option<Vec<String>>,
    max_message: Option<usize>,
}

impl RawWebSocket {
    /// Checked: each origin `scheme://host[:port]`, the size from 1 KiB to 1 MiB.
    pub(super) fn read<E>(
        self,
        at: usize,
        invalid: impl Fn(usize, String) -> E,
    ) -> Result<WebSocketPolicy, E> {
        let mut policy = WebSocketPolicy::default();
        for origin in self.origins.unwrap_or_default() {
            let origin = origin.trim_end_matches('/').to_string();
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            if rest.is_none_or(|r| r.is_empty() || r.contains('/')) {
                return Err(invalid(
                    at,
                    format!(
                        "[websocket] origin `{origin}` is not scheme://host[:port] \
                         (https://phone.club-a.test), as browsers send it"
                    ),
                ));
            }
            policy.origins.push(origin);
        }
        if let Some(size) = self.max_message {
            if !(1024..=1 << 20).contains(&size) {
                return Err(invalid(
                    at,
                    format!("[websocket] max_message = {size}: from 1024 to 1048576 bytes"),
                ));
            }
            policy.max_message = size;
        }
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::Path;

    #[test]
    fn origins_and_sizes_are_checked_at_their_line() {
        let ok = super::super::parse(
            Path::new("f.toml"),
            "[websocket]\norigins = [\"https://phone.club-a.test/\"]\nmax_message = 2048\n",
        )
        .unwrap();
        let policy = ok.websocket.unwrap();
        assert_eq!(policy.origins, ["https://phone.club-a.test"]);
        assert_eq!(policy.max_message, 2048);
        for (text, says) in [
            ("origins = [\"phone.club-a.test\"]", "is not scheme://host"),
            ("origins = [\"https://a.test/app\"]", "is not scheme://host"),
            ("max_message = 10", "from 1024 to 1048576"),
        ] {
            let e = super::super::parse(Path::new("f.toml"), &format!("\n[websocket]\n{text}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("f.toml:2:") && e.contains(says), "{e}");
        }
    }
}

//! Values the relay's settings are written in, read the same by `openline-media` and by
//! `openline serve` (its `--media-*` and `--turn-*` options and config file).

use std::net::SocketAddr;

/// `udp:IP:PORT`.
pub fn parse_udp(s: &str) -> Result<SocketAddr, String> {
    let addr = s
        .strip_prefix("udp:")
        .ok_or_else(|| format!("`{s}`: expected udp:IP:PORT"))?;
    addr.parse()
        .map_err(|e| format!("`{addr}`: not an IP:PORT ({e})"))
}

/// `USER:PASSWORD`, neither empty (the password may hold colons).
pub fn parse_user(s: &str) -> Result<(String, String), String> {
    let (user, password) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}`: expected USER:PASSWORD"))?;
    if user.is_empty() || password.is_empty() {
        return Err(format!("`{s}`: neither USER nor PASSWORD may be empty"));
    }
    Ok((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_users_read_or_say_why_not() {
        assert_eq!(
            parse_udp("udp:127.0.0.1:3478"),
            Ok(([127, 0, 0, 1], 3478).into())
        );
        assert!(
            parse_udp("127.0.0.1:3478")
                .unwrap_err()
                .contains("expected udp:")
        );
        assert!(
            parse_udp("udp:nowhere")
                .unwrap_err()
                .contains("not an IP:PORT")
        );
        assert_eq!(parse_user("a:b:c"), Ok(("a".into(), "b:c".into())));
        assert!(parse_user("a").is_err() && parse_user(":b").is_err() && parse_user("a:").is_err());
    }
}

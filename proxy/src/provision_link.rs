//! `openline user add --provision URL`: a one-time link Linphone's remote provisioning reads,
//! as text and as a QR code for the terminal, and the accounts line for baresip.

use openline_registrar::store::Store;
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;

/// What the admin hands a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handout {
    /// `BASE/provision/TOKEN`.
    pub link: String,
    /// The link as a QR code, two rows of modules per line of text.
    pub qr: String,
    /// baresip's `accounts` line.
    pub baresip: String,
}

/// Makes a link for `aor` valid `hours` from `now`, stored so the server can answer it once.
pub async fn hand_out(
    store: &Store,
    (aor, password): (&str, &str),
    base: &str,
    sip_proxy: Option<&str>,
    (now, hours): (u64, u64),
) -> anyhow::Result<Handout> {
    if !base.starts_with("https://") {
        anyhow::bail!(
            "--provision {base}: the link is https:// (the server's --web https: listener)"
        );
    }
    let token = openline_web::provision::issue(store, aor, now, hours.saturating_mul(3600)).await?;
    let link = format!("{}/provision/{token}", base.trim_end_matches('/'));
    let qr = QrCode::new(link.as_bytes())?
        .render::<Dense1x2>()
        // Terminals are mostly light text on dark: the light modules are the printed ones.
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    let host = base
        .trim_start_matches("https://")
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    let outbound = match sip_proxy {
        Some(p) => p.to_string(),
        None => format!("sip:{host};transport=tcp"),
    };
    Ok(Handout {
        link,
        qr,
        baresip: baresip_line(aor, password, &outbound),
    })
}

/// `<sip:AOR;transport=tcp>;auth_pass=…;outbound="PROXY"`: baresip registers over TCP
/// through our proxy (over TCP it keeps the flow open, RFC 5626 keep-alives).
fn baresip_line(aor: &str, password: &str, outbound: &str) -> String {
    format!("<sip:{aor};transport=tcp>;auth_pass={password};outbound=\"{outbound}\";regint=600")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn a_handout_names_the_link_the_server_answers_and_a_readable_code() {
        let store = Store::Memory(openline_registrar::store::MemoryStore::default());
        let h = hand_out(
            &store,
            ("alice@club-a.test", "pw"),
            "https://sip.club-a.test:8443/",
            None,
            (1000, 24),
        )
        .await
        .unwrap();
        let token = h
            .link
            .strip_prefix("https://sip.club-a.test:8443/provision/")
            .unwrap();
        assert_eq!(token.len(), 32);
        let hash = openline_web::provision::token::token_hash(token);
        use openline_registrar::store::ProvisionStore as _;
        assert_eq!(
            store.take_token(&hash, 1001).await.unwrap().as_deref(),
            Some("alice@club-a.test")
        );
        assert!(h.qr.lines().count() > 10 && h.qr.contains('█'));
        assert_eq!(
            h.baresip,
            "<sip:alice@club-a.test;transport=tcp>;auth_pass=pw;outbound=\"sip:sip.club-a.test;transport=tcp\";regint=600"
        );
        assert!(
            hand_out(&store, ("a@b", "p"), "http://x", None, (0, 1))
                .await
                .is_err()
        );
    }
}

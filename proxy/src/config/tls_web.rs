//! The `[tls]` and `[web]` tables: certificate files given by hand or obtained by ACME, and
//! the HTTP(S) listeners ACME's challenges and provisioning links are answered on.

use openline_certs::{AcmeConfig, Challenge};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use toml::Spanned;

/// The `[tls]` table, read.
#[derive(Debug, Clone)]
pub struct TlsSection {
    /// PEM certificate chain (with ACME: where it is written, `<acme.dir>/cert.pem` unless said).
    pub cert: PathBuf,
    /// PEM private key (with ACME: `<acme.dir>/key.pem` unless said).
    pub key: PathBuf,
    /// PEM roots; the system bundle when absent.
    pub ca: Option<PathBuf>,
    /// Certificates from an ACME CA instead of by hand.
    pub acme: Option<AcmeSection>,
}

/// `[tls] acme = { ... }`, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSection {
    /// The CA and the challenge.
    pub config: AcmeConfig,
    /// Where the account and the certificate are kept.
    pub dir: PathBuf,
}

/// The `[web]` table, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebSection {
    /// `http:IP:PORT` (HTTP-01 answers) and `https:IP:PORT` (links, TLS-ALPN-01 answers).
    pub listen: Vec<(bool, SocketAddr)>,
    /// The SIP proxy provisioning documents name (`sip:HOST:PORT;transport=tcp`).
    pub provisioning_proxy: Option<String>,
}

/// `[tls]` as TOML gives it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
    acme: Option<Spanned<RawAcme>>,
}

/// `acme = { ... }` as TOML gives it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAcme {
    directory: Spanned<String>,
    email: Option<String>,
    challenge: Option<Spanned<String>>,
    directory_ca: Option<PathBuf>,
    dir: Option<PathBuf>,
}

/// `[web]` as TOML gives it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeb {
    #[serde(default)]
    listen: Vec<Spanned<String>>,
    provisioning_proxy: Option<String>,
}

/// Where ACME keeps its files when `dir` is not given.
pub const ACME_DIR: &str = "acme";

/// Reads a web listener: `http:IP:PORT` or `https:IP:PORT` (`tcp:`/`tls:` mean the same).
pub fn web_listen(s: &str) -> Result<(bool, SocketAddr), String> {
    let (scheme, addr) = s.split_once(':').unwrap_or(("", s));
    let tls = match scheme {
        "http" | "tcp" => false,
        "https" | "tls" => true,
        _ => return Err(format!("`{s}`: expected http:IP:PORT or https:IP:PORT")),
    };
    let addr = addr
        .parse()
        .map_err(|_| format!("`{s}`: expected http:IP:PORT or https:IP:PORT"))?;
    Ok((tls, addr))
}

/// Reads `[tls]` and `[web]` together (ACME needs a listener for its challenge); `invalid`
/// turns a place in the file and a message into the error.
pub(super) fn read<E>(
    tls: Option<Spanned<RawTls>>,
    web: Option<Spanned<RawWeb>>,
    invalid: impl Fn(usize, String) -> E,
) -> Result<(Option<TlsSection>, Option<WebSection>), E> {
    let web_at = web.as_ref().map_or(0, |w| w.span().start);
    let web = match web {
        None => None,
        Some(w) => {
            let w = w.into_inner();
            let listen = w
                .listen
                .iter()
                .map(|l| web_listen(l.get_ref()).map_err(|e| invalid(l.span().start, e)))
                .collect::<Result<Vec<_>, _>>()?;
            Some(WebSection {
                listen,
                provisioning_proxy: w.provisioning_proxy,
            })
        }
    };
    if web.as_ref().is_some_and(|w| w.listen.is_empty()) {
        return Err(invalid(web_at, "[web] has no listen = [...]".into()));
    }
    let Some(tls) = tls else {
        if web
            .as_ref()
            .is_some_and(|w| w.listen.iter().any(|(tls, _)| *tls))
        {
            return Err(invalid(
                web_at,
                "an https: listener needs [tls] (cert and key, or acme)".into(),
            ));
        }
        return Ok((None, web));
    };
    let tls_at = tls.span().start;
    let raw = tls.into_inner();
    let acme = match raw.acme {
        None => None,
        Some(a) => {
            let at = a.span().start;
            let a = a.into_inner();
            if !a.directory.get_ref().starts_with("https://") {
                return Err(invalid(
                    a.directory.span().start,
                    format!(
                        "`{}`: an ACME directory is an https:// URL",
                        a.directory.get_ref()
                    ),
                ));
            }
            let challenge = match a.challenge.as_ref().map(|c| c.get_ref().as_str()) {
                None | Some("http-01") => Challenge::Http01,
                Some("tls-alpn-01") => Challenge::TlsAlpn01,
                Some(other) => {
                    let place = a.challenge.as_ref().map_or(at, |c| c.span().start);
                    return Err(invalid(
                        place,
                        format!("`{other}`: the challenge is http-01 or tls-alpn-01"),
                    ));
                }
            };
            let https = challenge == Challenge::TlsAlpn01;
            let answered = web
                .as_ref()
                .is_some_and(|w| w.listen.iter().any(|(tls, _)| *tls == https));
            if !answered {
                let (want, port) = if https { ("https", 443) } else { ("http", 80) };
                return Err(invalid(
                    at,
                    format!(
                        "ACME's {challenge} is answered on a web listener the CA reaches: add \
                         [web] listen = [\"{want}:0.0.0.0:{port}\"]"
                    ),
                ));
            }
            Some(AcmeSection {
                config: AcmeConfig {
                    directory: a.directory.into_inner(),
                    email: a.email,
                    directory_ca: a.directory_ca,
                    challenge,
                },
                dir: a.dir.unwrap_or_else(|| ACME_DIR.into()),
            })
        }
    };
    let (cert, key) = match (raw.cert, raw.key, &acme) {
        (Some(c), Some(k), _) => (c, k),
        (c, k, Some(a)) => (
            c.unwrap_or_else(|| a.dir.join("cert.pem")),
            k.unwrap_or_else(|| a.dir.join("key.pem")),
        ),
        _ => {
            return Err(invalid(
                tls_at,
                "[tls] needs cert and key, or acme = { directory = URL, email = ... }".into(),
            ));
        }
    };
    Ok((
        Some(TlsSection {
            cert,
            key,
            ca: raw.ca,
            acme,
        }),
        web,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use crate::config::{ConfigError, parse};
    use std::path::Path;

    fn refused(text: &str) -> (usize, String) {
        match parse(Path::new("f.toml"), text) {
            Err(ConfigError::Invalid { line, message, .. }) => (line, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn acme_reads_with_its_defaults_and_mistakes_name_their_line() {
        let c = parse(
            Path::new("f.toml"),
            "[tls]\nacme = { directory = \"https://ca.test/dir\", email = \"a@b.test\" }\n\
             [web]\nlisten = [\"http:0.0.0.0:80\", \"https:[::]:443\"]\n",
        )
        .unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.cert, Path::new("acme/cert.pem"));
        let acme = tls.acme.unwrap();
        assert_eq!(acme.config.challenge, openline_certs::Challenge::Http01);
        assert_eq!(c.web.unwrap().listen.len(), 2);
        // No listener for the challenge: it says which to add.
        let (line, m) = refused(
            "[tls]\nacme = { directory = \"https://ca.test/dir\", challenge = \"tls-alpn-01\" }\n\
             [web]\nlisten = [\"http:0.0.0.0:80\"]\n",
        );
        assert_eq!(line, 2);
        assert!(m.contains("https:0.0.0.0:443"), "{m}");
        let (line, m) = refused("[tls]\nacme = { directory = \"http://ca.test/dir\" }\n");
        assert_eq!(line, 2);
        assert!(m.contains("https:// URL"), "{m}");
        let (_, m) = refused(
            "[web]\nlisten = [\"http:0.0.0.0:80\"]\n[tls]\nacme = { directory = \"https://c/d\", challenge = \"dns-01\" }\n",
        );
        assert!(m.contains("http-01 or tls-alpn-01"), "{m}");
        let (line, m) = refused("[tls]\nca = \"roots.pem\"\n");
        assert_eq!(line, 1);
        assert!(m.contains("cert and key, or acme"), "{m}");
        let (line, m) = refused("[web]\nlisten = [\"ftp:0.0.0.0:21\"]\n");
        assert_eq!(line, 2);
        assert!(m.contains("http:IP:PORT"), "{m}");
        let (_, m) = refused("[web]\nlisten = [\"https:0.0.0.0:443\"]\n");
        assert!(m.contains("needs [tls]"), "{m}");
    }
}

//! Certificates that take care of themselves (issue #21): ACME (RFC 8555) orders through
//! instant-acme for every served domain, answered by HTTP-01 or TLS-ALPN-01 (RFC 8737), renewed
//! with a third of the lifetime left, written whole where TLS reads them; on failure the old
//! certificate stays and the reason is said in one line. The schedule is sans-IO; the
//! manager is the thin driver; serving the answers is the web crate's job.

pub mod acme;
pub mod challenges;
pub mod files;
pub mod manager;
pub mod schedule;
pub mod standin;
pub mod validity;

pub use acme::{AcmeConfig, Challenge};
pub use challenges::{ACME_TLS_ALPN, Challenges};
pub use files::AcmeFiles;
pub use manager::{Event, Manager};
pub use validity::CertInfo;

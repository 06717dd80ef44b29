//! Headers: names, raw lines borrowed from the message, and one typed view per header family.

pub mod auth;
pub mod contact;
pub mod content_type;
pub mod cseq;
mod name;
pub mod name_addr;
pub mod params;
pub mod scalar;
pub mod via;

pub use auth::AuthParams;
pub use contact::Contact;
pub use content_type::MediaType;
pub use cseq::CSeq;
pub use name::HeaderName;
pub use name_addr::NameAddr;
pub use params::Params;
pub use via::Via;

/// One header line as received: its name and its value, folds and all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The name, resolved from its full or compact form.
    pub name: HeaderName<'a>,
    /// The value with leading and trailing white space removed; inner folds are kept.
    pub value: &'a str,
}

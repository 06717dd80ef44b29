//! Bindings of an address of record to contacts, and the change a REGISTER makes to them.

/// What identifies a binding within its address of record: the device (RFC 5626
/// `+sip.instance` with `reg-id`, or the instance alone), else the contact URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BindingKey {
    /// A device that named itself.
    Instance {
        /// The `+sip.instance` value, quotes removed.
        instance: String,
        /// The `reg-id`, one per flow of an outbound device.
        reg_id: Option<u32>,
    },
    /// A contact without an instance.
    Contact(String),
}

impl BindingKey {
    /// The key as one string, for the database's primary key.
    pub fn as_db(&self) -> String {
        match self {
            BindingKey::Instance {
                instance,
                reg_id: Some(r),
            } => format!("instance:{instance};reg-id={r}"),
            BindingKey::Instance {
                instance,
                reg_id: None,
            } => format!("instance:{instance}"),
            BindingKey::Contact(c) => format!("contact:{c}"),
        }
    }
}

/// One binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// `user@domain`.
    pub aor: String,
    /// The contact URI, as the device sent it (no header parameters).
    pub contact: String,
    /// `+sip.instance`, quotes removed.
    pub instance: Option<String>,
    /// `reg-id`.
    pub reg_id: Option<u32>,
    /// When it expires, in seconds since the Unix epoch.
    pub expires_at: u64,
    /// Preference in thousandths (`q=0.5` is 500).
    pub q: u16,
    /// Call-ID of the REGISTER that made or refreshed it.
    pub call_id: String,
    /// CSeq of that REGISTER.
    pub cseq: u32,
    /// Where that REGISTER came from (`udp:127.0.0.1:5062`): the flow to reach the device.
    pub source: String,
}

impl Binding {
    /// Its identity within the address of record.
    pub fn key(&self) -> BindingKey {
        match &self.instance {
            Some(i) => BindingKey::Instance {
                instance: i.clone(),
                reg_id: self.reg_id,
            },
            None => BindingKey::Contact(self.contact.clone()),
        }
    }

    /// Seconds left at `now` (0 once expired).
    pub fn remaining(&self, now: u64) -> u64 {
        self.expires_at.saturating_sub(now)
    }

    /// Whether it may still be routed to at `now`.
    pub fn is_live(&self, now: u64) -> bool {
        self.expires_at > now
    }
}

/// What one REGISTER changes: applied whole or not at all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeSet {
    /// The address of record.
    pub aor: String,
    /// Bindings to insert or replace (by key).
    pub upserts: Vec<Binding>,
    /// Keys to remove.
    pub removals: Vec<BindingKey>,
}

impl ChangeSet {
    /// Whether it changes nothing (a fetch).
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.removals.is_empty()
    }
}

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

    /// The key [`BindingKey::as_db`] wrote.
    pub fn from_db(s: &str) -> Option<Self> {
        if let Some(c) = s.strip_prefix("contact:") {
            return Some(BindingKey::Contact(c.to_string()));
        }
        let instance = s.strip_prefix("instance:")?;
        let with_reg_id = instance
            .rsplit_once(";reg-id=")
            .and_then(|(i, r)| Some((i, r.parse::<u32>().ok()?)));
        Some(match with_reg_id {
            Some((i, r)) => BindingKey::Instance {
                instance: i.to_string(),
                reg_id: Some(r),
            },
            None => BindingKey::Instance {
                instance: instance.to_string(),
                reg_id: None,
            },
        })
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
    /// The node of a cluster that holds that flow (issue #9); empty when the server runs alone.
    pub node: String,
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

    /// The device it belongs to, as the mailbox names devices owed a message: its
    /// `+sip.instance` (one device, whatever flows or contacts it registers), else the host and
    /// port of its contact. Two flows (reg-ids) of one device are one device; the user part
    /// is left out because some phones make a new one each start (baresip: `bob-0x55d1...`)
    /// while their address stays.
    pub fn device(&self) -> std::borrow::Cow<'_, str> {
        if let Some(instance) = &self.instance {
            return std::borrow::Cow::Borrowed(instance);
        }
        let address = openline_sip::Uri::parse(&self.contact).ok().and_then(|u| {
            u.sip()
                .map(|s| format!("{}:{}", s.host, s.port.unwrap_or(5060)))
        });
        match address {
            Some(a) => std::borrow::Cow::Owned(a),
            None => std::borrow::Cow::Borrowed(&self.contact),
        }
    }

    /// Whether this binding has `key`, without building its own (no allocation).
    pub fn has_key(&self, key: &BindingKey) -> bool {
        match (key, &self.instance) {
            (BindingKey::Instance { instance, reg_id }, Some(i)) => {
                i == instance && *reg_id == self.reg_id
            }
            (BindingKey::Contact(c), None) => *c == self.contact,
            _ => false,
        }
    }

    /// Whether `other` is the same binding (same key), perhaps in another version.
    pub fn same_binding(&self, other: &Binding) -> bool {
        match (&self.instance, &other.instance) {
            (Some(a), Some(b)) => a == b && self.reg_id == other.reg_id,
            (None, None) => self.contact == other.contact,
            _ => false,
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
    /// Whether the change removes or replaces `binding`.
    pub fn touches(&self, binding: &Binding) -> bool {
        self.removals.iter().any(|k| binding.has_key(k))
            || self.upserts.iter().any(|u| u.same_binding(binding))
    }

    /// Whether it changes nothing (a fetch).
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.removals.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(contact: &str, instance: Option<&str>, reg_id: Option<u32>) -> Binding {
        Binding {
            aor: "a@b".into(),
            contact: contact.into(),
            instance: instance.map(String::from),
            reg_id,
            expires_at: 0,
            q: 1000,
            call_id: String::new(),
            cseq: 0,
            source: String::new(),
            node: String::new(),
        }
    }

    #[test]
    fn keys_read_back_from_the_database() {
        for key in [
            binding("sip:a@h:1", None, None).key(),
            binding("sip:a@h:2", Some("<urn:x>"), Some(1)).key(),
            binding("sip:a@h:2", Some("<urn:x>"), None).key(),
        ] {
            assert_eq!(BindingKey::from_db(&key.as_db()), Some(key));
        }
        assert_eq!(BindingKey::from_db("other:x"), None);
    }

    #[test]
    fn identity_agrees_with_keys() {
        let plain = binding("sip:a@h:1", None, None);
        let device = binding("sip:a@h:2", Some("<urn:x>"), Some(1));
        let moved = binding("sip:a@h:3", Some("<urn:x>"), Some(1));
        let other_flow = binding("sip:a@h:2", Some("<urn:x>"), Some(2));
        for (a, b) in [
            (&plain, &device),
            (&device, &moved),
            (&device, &other_flow),
            (&plain, &plain),
        ] {
            assert_eq!(a.same_binding(b), a.key() == b.key());
            assert_eq!(a.has_key(&b.key()), a.key() == b.key());
        }
        let change = ChangeSet {
            aor: "a@b".into(),
            upserts: vec![moved.clone()],
            removals: vec![plain.key()],
        };
        assert!(change.touches(&plain) && change.touches(&device));
        assert!(!change.touches(&other_flow));
        // Devices: an instance is one device across flows and contacts; else the contact.
        assert_eq!(device.device(), "<urn:x>");
        assert_eq!(other_flow.device(), moved.device());
        assert_eq!(plain.device(), "h:1");
    }
}

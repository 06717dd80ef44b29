//! What a push says. Nothing of a message's text unless the operator allows it: the services
//! in between (Google, Apple) see what is not encrypted to the device.

use serde_json::{Map, Value, json};

/// Why the device is woken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// A call waits for the device (INVITE).
    Call {
        /// Its Call-ID, so the phone matches the INVITE it is about to get.
        call_id: String,
        /// The caller's address, when the operator lets it be shown.
        from: Option<String>,
    },
    /// That call is no longer ringing (CANCEL, or answered elsewhere): the second push that
    /// stops the ringing screen.
    CallEnded {
        /// The Call-ID of the first push.
        call_id: String,
    },
    /// Messages are stored for the device; one push however many arrive until it registers.
    Messages {
        /// The sender of the latest, when allowed.
        from: Option<String>,
        /// Its text, only when the operator allowed it.
        text: Option<String>,
    },
    /// A request other than a call or a message waits (SUBSCRIBE, OPTIONS...).
    Request {
        /// Its Call-ID.
        call_id: String,
    },
}

/// One push for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// Why.
    pub wake: Wake,
    /// The user woken, `user@domain`.
    pub aor: String,
}

impl Push {
    /// The kind, as the payload names it.
    pub fn kind(&self) -> &'static str {
        match self.wake {
            Wake::Call { .. } => "call",
            Wake::CallEnded { .. } => "call-ended",
            Wake::Messages { .. } => "message",
            Wake::Request { .. } => "request",
        }
    }

    /// Whether it must arrive now or not at all (a call rings for seconds).
    pub fn is_urgent(&self) -> bool {
        !matches!(self.wake, Wake::Messages { .. })
    }

    /// How long the service may hold it for a device out of reach, in seconds.
    pub fn ttl(&self) -> u64 {
        match self.wake {
            Wake::Messages { .. } => 86_400,
            _ => 30,
        }
    }

    /// The key under which a later push replaces an earlier one not yet delivered: one per
    /// user for messages (the phone fetches them all when it registers), one per call.
    pub fn collapse_key(&self) -> String {
        match &self.wake {
            Wake::Messages { .. } => "messages".to_string(),
            Wake::Call { call_id, .. }
            | Wake::CallEnded { call_id }
            | Wake::Request { call_id } => {
                let d = ring::digest::digest(&ring::digest::SHA256, call_id.as_bytes());
                d.as_ref()[..12]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            }
        }
    }

    /// The data fields every service carries, as strings (FCM's data map takes only strings).
    /// The names follow what Linphone's apps read (`call-id`, `from-uri`, `loc-key`).
    pub fn fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("openline".into(), json!(self.kind()));
        m.insert("to-uri".into(), json!(format!("sip:{}", self.aor)));
        let (loc_key, call_id, from, text) = match &self.wake {
            Wake::Call { call_id, from } => ("IC_MSG", Some(call_id), from.as_ref(), None),
            Wake::CallEnded { call_id } => ("IC_END", Some(call_id), None, None),
            Wake::Messages { from, text } => ("IM_MSG", None, from.as_ref(), text.as_ref()),
            Wake::Request { call_id } => ("IC_REQ", Some(call_id), None, None),
        };
        m.insert("loc-key".into(), json!(loc_key));
        if let Some(c) = call_id {
            m.insert("call-id".into(), json!(c));
        }
        if let Some(f) = from {
            m.insert("from-uri".into(), json!(f));
        }
        if let Some(t) = text {
            m.insert("text".into(), json!(t));
        }
        m
    }
}

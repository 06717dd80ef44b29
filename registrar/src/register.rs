//! REGISTER as a pure step (RFC 3261 section 10.3 steps 6 to 8, RFC 5626 section 6): the
//! request, the time and the current bindings in; the change to persist and the bindings after
//! it out, or a rejection that changes nothing.

use crate::binding::{Binding, BindingKey, ChangeSet};
use openline_sip::Message;
use openline_sip::header::Contact;
use openline_sip::header::contact::{expires_param, q_param};

/// Limits and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// Shortest registration accepted (423 below it).
    pub min_expires: u32,
    /// Longest registration granted; longer requests are shortened.
    pub max_expires: u32,
    /// Used when the request names none.
    pub default_expires: u32,
    /// Most Contact values in one REGISTER.
    pub max_contacts_per_request: usize,
    /// Most bindings one address of record may have.
    pub max_bindings_per_aor: usize,
    /// This node's name in a cluster, written into the bindings it makes; empty alone.
    pub node: String,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 7200,
            default_expires: 3600,
            max_contacts_per_request: 16,
            max_bindings_per_aor: 16,
            node: String::new(),
        }
    }
}

/// An accepted REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// What to persist before answering (empty for a fetch).
    pub change: ChangeSet,
    /// Every live binding once the change is applied, highest q first: the 200 lists them.
    pub bindings: Vec<Binding>,
}

/// A refused REGISTER changes nothing: [`Refusal`] says why.
pub use openline_sip::message::Refusal;

/// Decides a REGISTER for `aor` (already authenticated and checked to be ours) received from
/// `source` at `now` (seconds since the epoch), against the `current` bindings of that aor.
pub fn register(
    request: &Message<'_>,
    aor: &str,
    source: &str,
    now: u64,
    current: &[Binding],
    config: &RegistrarConfig,
) -> Result<Registration, Refusal> {
    let contacts = request
        .contacts()
        .ok_or_else(|| Refusal::new(400, "Bad Request (malformed Contact header)"))?;
    if contacts.len() > config.max_contacts_per_request {
        return Err(Refusal::new(
            400,
            format!(
                "Bad Request (more than {} contacts)",
                config.max_contacts_per_request
            ),
        ));
    }
    let header_expires = match request.expires() {
        Some(Some(e)) => Some(e),
        Some(None) => {
            return Err(Refusal::new(400, "Bad Request (malformed Expires header)"));
        }
        None => None,
    };
    let call_id = request.call_id;
    let cseq = request.cseq.seq;
    // RFC 3261 10.3 step 7: same Call-ID needs a higher CSeq, or the update is aborted.
    let out_of_order = |b: &Binding| b.call_id == call_id && cseq <= b.cseq;
    let mut change = ChangeSet {
        aor: aor.to_string(),
        ..ChangeSet::default()
    };

    if contacts.iter().any(|c| matches!(c, Contact::Wildcard)) {
        if contacts.len() != 1 || header_expires != Some(0) {
            return Err(Refusal::new(
                400,
                "Bad Request (Contact: * must stand alone with Expires: 0)",
            ));
        }
        if current.iter().any(out_of_order) {
            return Err(Refusal::new(
                400,
                "Bad Request (CSeq not higher than the binding's)",
            ));
        }
        change.removals = current.iter().map(Binding::key).collect();
        return Ok(Registration {
            change,
            bindings: Vec::new(),
        });
    }

    for contact in &contacts {
        let Contact::Address(addr) = contact else {
            continue;
        };
        let requested = match addr.params.get("expires") {
            Some(_) => expires_param(addr)
                .ok_or_else(|| Refusal::new(400, "Bad Request (malformed expires parameter)"))?,
            None => header_expires.unwrap_or(config.default_expires),
        };
        if requested != 0 && requested < config.min_expires {
            let mut r = Refusal::new(423, "Interval Too Brief");
            r.headers
                .push(("Min-Expires", config.min_expires.to_string()));
            return Err(r);
        }
        let q = match addr.params.get("q") {
            Some(_) => q_param(addr)
                .ok_or_else(|| Refusal::new(400, "Bad Request (malformed q parameter)"))?,
            None => 1000,
        };
        let instance = addr
            .params
            .get("+sip.instance")
            .flatten()
            .map(|i| i.trim_matches('"').to_string());
        let reg_id = match addr.params.get("reg-id").flatten() {
            Some(r) => Some(
                r.parse::<u32>()
                    .map_err(|_| Refusal::new(400, "Bad Request (malformed reg-id parameter)"))?,
            ),
            None => None,
        };
        let binding = Binding {
            aor: aor.to_string(),
            contact: addr.uri.as_str().to_string(),
            instance,
            reg_id,
            expires_at: now + u64::from(requested.min(config.max_expires)),
            q,
            call_id: call_id.to_string(),
            cseq,
            source: source.to_string(),
            node: config.node.clone(),
        };
        let key = binding.key();
        if current.iter().any(|b| b.has_key(&key) && out_of_order(b)) {
            return Err(Refusal::new(
                400,
                "Bad Request (CSeq not higher than the binding's)",
            ));
        }
        // A later Contact for the same binding in one request wins.
        change.upserts.retain(|b| !b.same_binding(&binding));
        change.removals.retain(|k| *k != key);
        if requested == 0 {
            if current.iter().any(|b| b.has_key(&key)) {
                change.removals.push(key);
            }
        } else {
            change.upserts.push(binding);
        }
    }

    let mut bindings: Vec<Binding> = current
        .iter()
        .filter(|b| b.is_live(now))
        .filter(|b| !change.touches(b))
        .cloned()
        .chain(change.upserts.iter().cloned())
        .collect();
    if bindings.len() > config.max_bindings_per_aor {
        return Err(Refusal::new(
            403,
            format!(
                "Forbidden (more than {} registered contacts)",
                config.max_bindings_per_aor
            ),
        ));
    }
    bindings.sort_by(|a, b| b.q.cmp(&a.q).then(b.expires_at.cmp(&a.expires_at)));
    Ok(Registration { change, bindings })
}

/// The Contact values a 200 lists: every binding with its remaining time.
pub fn contact_values(bindings: &[Binding], now: u64) -> Vec<String> {
    bindings
        .iter()
        .map(|b| {
            let mut v = format!("<{}>;expires={}", b.contact, b.remaining(now));
            if b.q != 1000 {
                v.push_str(&format!(";q={}.{:03}", b.q / 1000, b.q % 1000));
            }
            if let Some(i) = &b.instance {
                v.push_str(&format!(";+sip.instance=\"{i}\""));
            }
            if let Some(r) = b.reg_id {
                v.push_str(&format!(";reg-id={r}"));
            }
            v
        })
        .collect()
}

/// The key of every binding a change touches (for tests and logs).
pub fn touched(change: &ChangeSet) -> Vec<BindingKey> {
    change
        .upserts
        .iter()
        .map(Binding::key)
        .chain(change.removals.iter().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn req(contacts: &[&str], expires: Option<&str>, call_id: &str, cseq: u32) -> Vec<u8> {
        let mut s = format!(
            "REGISTER sip:club-a.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK{cseq}\r\nFrom: <sip:alice@club-a.test>;tag=1\r\nTo: <sip:alice@club-a.test>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nMax-Forwards: 70\r\n"
        );
        for c in contacts {
            s += &format!("Contact: {c}\r\n");
        }
        if let Some(e) = expires {
            s += &format!("Expires: {e}\r\n");
        }
        s += "Content-Length: 0\r\n\r\n";
        s.into_bytes()
    }

    fn run(raw: &[u8], current: &[Binding]) -> Result<Registration, Refusal> {
        let m = Message::parse(raw).unwrap();
        register(
            &m,
            "alice@club-a.test",
            "udp:127.0.0.1:5062",
            NOW,
            current,
            &RegistrarConfig::default(),
        )
    }

    #[test]
    fn add_two_contacts_ordered_by_q() {
        let r = run(
            &req(
                &[
                    "<sip:a@127.0.0.1:5062>;q=0.5",
                    "<sip:a@127.0.0.1:5064>;q=0.9;expires=600",
                ],
                None,
                "c1",
                1,
            ),
            &[],
        )
        .unwrap();
        assert_eq!(r.change.upserts.len(), 2);
        assert_eq!(r.bindings[0].contact, "sip:a@127.0.0.1:5064");
        assert_eq!(r.bindings[0].expires_at, NOW + 600);
        assert_eq!(r.bindings[1].expires_at, NOW + 3600);
        assert_eq!(
            contact_values(&r.bindings, NOW)[1],
            "<sip:a@127.0.0.1:5062>;expires=3600;q=0.500"
        );
    }

    #[test]
    fn refresh_remove_and_wildcard() {
        let first = run(&req(&["<sip:a@127.0.0.1:5062>"], None, "c1", 1), &[]).unwrap();
        let refreshed = run(
            &req(&["<sip:a@127.0.0.1:5062>"], Some("120"), "c1", 2),
            &first.bindings,
        )
        .unwrap();
        assert_eq!(refreshed.bindings.len(), 1);
        assert_eq!(refreshed.bindings[0].expires_at, NOW + 120);
        let removed = run(
            &req(&["<sip:a@127.0.0.1:5062>"], Some("0"), "c1", 3),
            &refreshed.bindings,
        )
        .unwrap();
        assert!(removed.bindings.is_empty());
        assert_eq!(removed.change.removals.len(), 1);
        let all = run(&req(&["*"], Some("0"), "c2", 1), &first.bindings).unwrap();
        assert_eq!(all.change.removals, vec![first.bindings[0].key()]);
        assert!(run(&req(&["*"], Some("60"), "c2", 1), &first.bindings).is_err());
        assert!(
            run(
                &req(&["*", "<sip:x@y>"], Some("0"), "c2", 1),
                &first.bindings
            )
            .is_err()
        );
    }

    #[test]
    fn out_of_order_cseq_is_refused() {
        let first = run(&req(&["<sip:a@127.0.0.1:5062>"], None, "c1", 5), &[]).unwrap();
        let again = run(
            &req(&["<sip:a@127.0.0.1:5062>"], None, "c1", 5),
            &first.bindings,
        )
        .unwrap_err();
        assert_eq!(again.code, 400);
        // Another Call-ID may update it whatever its CSeq.
        assert!(
            run(
                &req(&["<sip:a@127.0.0.1:5062>"], None, "c9", 1),
                &first.bindings
            )
            .is_ok()
        );
    }

    #[test]
    fn too_brief_gets_423_with_min_expires() {
        let r = run(&req(&["<sip:a@127.0.0.1:5062>"], Some("10"), "c1", 1), &[]).unwrap_err();
        assert_eq!(r.code, 423);
        assert_eq!(r.headers, vec![("Min-Expires", "60".to_string())]);
    }

    #[test]
    fn long_expires_is_capped_and_overflowing_expires_refused() {
        let r = run(
            &req(&["<sip:a@127.0.0.1:5062>;expires=999999"], None, "c1", 1),
            &[],
        )
        .unwrap();
        assert_eq!(r.bindings[0].expires_at, NOW + 7200);
        let r = run(
            &req(
                &["<sip:a@127.0.0.1:5062>;expires=280297596632815"],
                None,
                "c1",
                1,
            ),
            &[],
        )
        .unwrap_err();
        assert_eq!(
            (r.code, r.reason.as_str()),
            (400, "Bad Request (malformed expires parameter)")
        );
    }

    #[test]
    fn instance_replaces_its_own_binding() {
        let inst = "+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1";
        let first = run(
            &req(&[&format!("<sip:a@127.0.0.1:5062>;{inst}")], None, "c1", 1),
            &[],
        )
        .unwrap();
        // New port after a NAT rebinding, new Call-ID after a reboot: still the same device.
        let second = run(
            &req(&[&format!("<sip:a@127.0.0.1:6000>;{inst}")], None, "c2", 1),
            &first.bindings,
        )
        .unwrap();
        assert_eq!(second.bindings.len(), 1);
        assert_eq!(second.bindings[0].contact, "sip:a@127.0.0.1:6000");
        assert!(contact_values(&second.bindings, NOW)[0].ends_with(
            ";+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1"
        ));
    }

    #[test]
    fn limits_and_fetch() {
        let many: Vec<String> = (0..17)
            .map(|i| format!("<sip:a@127.0.0.1:{}>", 6000 + i))
            .collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(run(&req(&refs, None, "c1", 1), &[]).unwrap_err().code, 400);
        let first = run(&req(&refs[..2], None, "c1", 1), &[]).unwrap();
        let fetch = run(&req(&[], None, "c1", 2), &first.bindings).unwrap();
        assert!(fetch.change.is_empty());
        assert_eq!(fetch.bindings.len(), 2);
    }

    #[test]
    fn expired_bindings_are_not_listed() {
        let mut first = run(&req(&["<sip:a@127.0.0.1:5062>"], None, "c1", 1), &[]).unwrap();
        first.bindings[0].expires_at = NOW;
        let fetch = run(&req(&[], None, "c1", 2), &first.bindings).unwrap();
        assert!(fetch.bindings.is_empty());
    }
}

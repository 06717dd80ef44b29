//! The devices each user registered lately. A message is owed to every one of them, offline
//! ones included, so that a laptop that was closed gets what the phone got.

use std::collections::HashMap;

/// How often a device's last sighting is written: daily is enough for a 30-day expiry, and
/// keeps a REGISTER refresh to its single binding upsert.
const NOTE_EVERY: u64 = 86_400;

/// Known devices per user, with when each was last noted.
#[derive(Debug, Default)]
pub struct KnownDevices {
    by_aor: HashMap<String, Vec<(String, u64)>>,
}

impl KnownDevices {
    /// `device` of `aor` registered at `now`: true when that should be written down (a new
    /// device, or one last written over a day ago).
    pub fn note(&mut self, aor: &str, device: &str, now: u64) -> bool {
        let devices = match self.by_aor.get_mut(aor) {
            Some(d) => d,
            None => self.by_aor.entry(aor.to_string()).or_default(),
        };
        match devices.iter_mut().find(|(d, _)| d == device) {
            Some((_, seen)) if now.saturating_sub(*seen) < NOTE_EVERY => false,
            Some((_, seen)) => {
                *seen = now;
                true
            }
            None => {
                devices.push((device.to_string(), now));
                true
            }
        }
    }

    /// Loads what the store remembers (or what bindings show at start) without writing.
    pub fn load(&mut self, aor: &str, device: &str, seen: u64) {
        let devices = self.by_aor.entry(aor.to_string()).or_default();
        match devices.iter_mut().find(|(d, _)| d == device) {
            Some((_, at)) => *at = (*at).max(seen),
            None => devices.push((device.to_string(), seen)),
        }
    }

    /// The devices of `aor`.
    pub fn of(&self, aor: &str) -> impl Iterator<Item = &str> {
        self.by_aor
            .get(aor)
            .into_iter()
            .flatten()
            .map(|(d, _)| d.as_str())
    }

    /// Forgets devices last noted before `before`.
    pub fn forget_before(&mut self, before: u64) {
        self.by_aor.retain(|_, devices| {
            devices.retain(|(_, seen)| *seen >= before);
            !devices.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_written_when_new_and_then_at_most_daily() {
        let mut k = KnownDevices::default();
        assert!(k.note("bob@a", "urn:uuid:phone", 1000));
        assert!(!k.note("bob@a", "urn:uuid:phone", 1000 + 3600));
        assert!(k.note("bob@a", "urn:uuid:laptop", 2000));
        assert!(k.note("bob@a", "urn:uuid:phone", 1000 + NOTE_EVERY));
        assert_eq!(
            k.of("bob@a").collect::<Vec<_>>(),
            ["urn:uuid:phone", "urn:uuid:laptop"]
        );
        k.forget_before(3000);
        assert_eq!(k.of("bob@a").collect::<Vec<_>>(), ["urn:uuid:phone"]);
        k.forget_before(u64::MAX);
        assert_eq!(k.of("bob@a").count(), 0);
    }
}

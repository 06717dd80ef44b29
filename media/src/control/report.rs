//! What a call's media was like, per party: built from the relay's legs (`quality`), said in
//! one line when the call ends, shown live by `openline status --calls`, and where one party
//! sent nothing, or stopped, named as one-way audio.

use crate::quality::LegQuality;
use std::fmt::Write as _;
use std::time::Duration;

/// A party that goes this long without sending while the other sends has stopped.
const STOPPED: Duration = Duration::from_secs(5);

/// One call's quality.
#[derive(Debug, Clone, PartialEq)]
pub struct CallReport {
    /// Its Call-ID.
    pub call_id: String,
    /// Who each side is: offerer, answerer.
    pub parties: [String; 2],
    /// Per relayed stream (m= line), what each side sent: offerer's, answerer's.
    pub streams: Vec<[LegQuality; 2]>,
}

impl CallReport {
    /// One-way audio and the like, in words: a party that sent nothing on a stream the other
    /// used, or stopped long before the other.
    pub fn problems(&self) -> Vec<String> {
        let mut said = Vec::new();
        for (i, legs) in self.streams.iter().enumerate() {
            let stream = if self.streams.len() > 1 {
                format!(" on stream {}", i + 1)
            } else {
                String::new()
            };
            for (me, other) in [(0, 1), (1, 0)] {
                let (mine, theirs) = (&legs[me], &legs[other]);
                if theirs.packets == 0 {
                    continue;
                }
                let party = &self.parties[me];
                match mine.silent_for {
                    None => said.push(format!(
                        "one-way audio{stream}: {party}'s side sent nothing"
                    )),
                    Some(quiet)
                        if quiet >= STOPPED
                            && theirs.silent_for.is_some_and(|t| t + STOPPED <= quiet) =>
                    {
                        said.push(format!(
                            "one-way audio{stream}: {party}'s side sent nothing for the last {} s",
                            quiet.as_secs()
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
        said
    }

    /// The line logged when the call ends.
    pub fn line(&self) -> String {
        let mut line = format!("call {} media:", self.call_id);
        for (i, legs) in self.streams.iter().enumerate() {
            if self.streams.len() > 1 {
                let _ = write!(line, " stream {}:", i + 1);
            }
            for (side, q) in legs.iter().enumerate() {
                let _ = write!(
                    line,
                    " {} sent {} packets, {:.1} % lost, jitter {:.1} ms, MOS {:.1}",
                    self.parties[side],
                    q.packets,
                    q.loss * 100.0,
                    q.jitter_ms,
                    q.mos
                );
                if let Some(r) = q.reported {
                    let _ = write!(line, " (its RTCP: {:.1} % lost", r.fraction_lost * 100.0);
                    if let Some((_, mos)) = r.xr {
                        let _ = write!(line, ", MOS {mos:.1}");
                    }
                    line.push(')');
                }
                line.push(if side == 0 { ';' } else { '.' });
            }
        }
        for p in self.problems() {
            let _ = write!(line, " {p}.");
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg(packets: u64, loss: f64, silent: Option<u64>) -> LegQuality {
        LegQuality {
            packets,
            lost: (packets as f64 * loss) as u64,
            loss,
            jitter_ms: 1.0,
            r_factor: crate::quality::r_factor(loss, 1.0),
            mos: crate::quality::mos(crate::quality::r_factor(loss, 1.0)),
            reported: None,
            silent_for: silent.map(Duration::from_secs),
        }
    }

    fn report(legs: [LegQuality; 2]) -> CallReport {
        CallReport {
            call_id: "c1".into(),
            parties: ["alice@club-a.test".into(), "bob@club-a.test".into()],
            streams: vec![legs],
        }
    }

    #[test]
    fn a_side_that_sent_nothing_or_stopped_is_named_and_a_good_call_has_no_problems() {
        let good = report([leg(500, 0.0, Some(0)), leg(500, 0.05, Some(0))]);
        assert!(good.problems().is_empty());
        let line = good.line();
        assert!(
            line.contains("alice@club-a.test sent 500 packets, 0.0 % lost"),
            "{line}"
        );
        assert!(
            line.contains("bob@club-a.test sent 500 packets, 5.0 % lost"),
            "{line}"
        );
        let mute = report([leg(500, 0.0, Some(0)), leg(0, 0.0, None)]);
        assert_eq!(
            mute.problems(),
            vec!["one-way audio: bob@club-a.test's side sent nothing"]
        );
        let stopped = report([leg(100, 0.0, Some(12)), leg(700, 0.0, Some(0))]);
        assert_eq!(
            stopped.problems(),
            vec!["one-way audio: alice@club-a.test's side sent nothing for the last 12 s"]
        );
        assert!(
            report([leg(0, 0.0, None), leg(0, 0.0, None)])
                .problems()
                .is_empty()
        );
    }
}

//! Prometheus metrics (issue #11): every name in one place, described once, served as text at
//! `--metrics` by metrics-exporter-prometheus. Counters are bumped where things happen (the
//! `metrics` facade does nothing until a recorder is installed, so the sans-IO core may call
//! it); levels (transactions, bindings, calls) are read from the core once a second.

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use openline_media::net::RelayCounts;
use openline_registrar::auth::AuthOutcome;
use openline_sip::Method;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

/// SIP requests received, by method.
pub const REQUESTS: &str = "openline_sip_requests_received_total";
/// Pushes to sleeping phones, by outcome (sent, gone, throttled, failed, collapsed).
pub const PUSHES: &str = "openline_push_total";
/// SIP responses sent, by class (1xx..6xx).
pub const RESPONSES: &str = "openline_sip_responses_sent_total";
/// Datagrams or stream messages refused (400 without a transaction) or dropped as malformed.
pub const MALFORMED: &str = "openline_sip_malformed_total";
/// Credentials that failed: a wrong password or unknown user, malformed, or throttled.
pub const AUTH_FAILURES: &str = "openline_auth_failures_total";
/// Work refused because a limit was reached, by limit (requests_per_source, calls_per_user,
/// calls_per_domain, calls_out_per_hour, requests_per_domain).
pub const LIMITED: &str = "openline_limited_total";
/// Server and client transactions alive.
pub const TRANSACTIONS: &str = "openline_sip_transactions";
/// Dialogs the server holds state for, by kind (presence subscriptions; answered calls).
pub const DIALOGS: &str = "openline_dialogs";
/// Live bindings (registered devices).
pub const BINDINGS: &str = "openline_bindings";
/// MESSAGEs accepted (stored durably, then answered).
pub const MESSAGES_ACCEPTED: &str = "openline_messages_accepted_total";
/// Messages handed to a device that took them (one per device).
pub const MESSAGES_DELIVERED: &str = "openline_messages_delivered_total";
/// Messages stored and still owed to some device.
pub const MESSAGES_WAITING: &str = "openline_messages_waiting";
/// Calls with media through the embedded relay now.
pub const RELAY_CALLS: &str = "openline_relay_calls";
/// Media packets the relay forwarded, and dropped by reason.
pub const RELAY_PACKETS: &str = "openline_relay_packets_total";
/// Per ended call and leg: the share of the party's packets lost on the way to the relay.
pub const CALL_LOSS: &str = "openline_call_leg_loss_ratio";
/// Per ended call and leg: interarrival jitter of the party's packets.
pub const CALL_JITTER: &str = "openline_call_leg_jitter_seconds";
/// Per ended call and leg: the MOS estimate of what the party sent.
pub const CALL_MOS: &str = "openline_call_leg_mos";
/// Ended calls where one party sent nothing, or stopped (one-way audio).
pub const ONE_WAY_CALLS: &str = "openline_calls_one_way_audio_total";
/// Seconds until the TLS certificate in use expires (negative once it has).
pub const TLS_EXPIRY: &str = "openline_tls_certificate_expiry_seconds";
/// ACME orders, by result (issued, failed).
pub const ACME_ORDERS: &str = "openline_acme_orders_total";
/// How long database operations took, by kind.
pub const DB_SECONDS: &str = "openline_db_operation_seconds";

/// Reads `tcp:IP:PORT`, where /metrics is served.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.strip_prefix("tcp:")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("`{s}` is not tcp:IP:PORT (tcp:127.0.0.1:9090)"))
}

/// Installs the recorder and serves /metrics on `addr` (on the current tokio runtime).
pub fn install(addr: SocketAddr) -> anyhow::Result<()> {
    use anyhow::Context;
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(DB_SECONDS.into()),
            &[0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0],
        )
        .context("metrics buckets")?
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(CALL_LOSS.into()),
            &[0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0],
        )
        .context("metrics buckets")?
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(CALL_JITTER.into()),
            &[0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2],
        )
        .context("metrics buckets")?
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(CALL_MOS.into()),
            &[1.0, 2.0, 2.5, 3.0, 3.5, 3.8, 4.0, 4.2, 4.4, 4.5],
        )
        .context("metrics buckets")?
        .install()
        .with_context(|| format!("serving metrics on tcp:{addr}"))?;
    describe();
    Ok(())
}

fn describe() {
    describe_counter!(REQUESTS, "SIP requests received, by method.");
    describe_counter!(
        PUSHES,
        "Pushes to sleeping phones, by outcome (sent, gone, throttled, failed, collapsed)."
    );
    describe_counter!(RESPONSES, "SIP responses sent, by class.");
    describe_counter!(
        MALFORMED,
        "Malformed SIP messages refused with 400 or dropped."
    );
    describe_counter!(AUTH_FAILURES, "Digest credentials that failed, by reason.");
    describe_counter!(
        LIMITED,
        "Work refused because a limit was reached, by limit (connections and TLS handshakes included)."
    );
    describe_gauge!(TRANSACTIONS, "SIP transactions alive.");
    describe_gauge!(DIALOGS, "Dialogs held, by kind.");
    describe_gauge!(BINDINGS, "Live registrations (devices).");
    describe_counter!(
        MESSAGES_ACCEPTED,
        "MESSAGEs accepted (stored, then answered)."
    );
    describe_counter!(MESSAGES_DELIVERED, "Messages delivered, one per device.");
    describe_gauge!(MESSAGES_WAITING, "Stored messages still owed to a device.");
    describe_gauge!(RELAY_CALLS, "Calls with media through the embedded relay.");
    describe_counter!(
        RELAY_PACKETS,
        "Media packets relayed or dropped, by outcome."
    );
    describe_histogram!(DB_SECONDS, Unit::Seconds, "Database operations, by kind.");
    describe_histogram!(
        CALL_LOSS,
        "Ended calls' legs: share of packets lost to the relay."
    );
    describe_histogram!(
        CALL_JITTER,
        Unit::Seconds,
        "Ended calls' legs: interarrival jitter."
    );
    describe_histogram!(CALL_MOS, "Ended calls' legs: MOS estimate (E-model).");
    describe_counter!(ONE_WAY_CALLS, "Ended calls with one-way audio.");
    describe_gauge!(
        TLS_EXPIRY,
        Unit::Seconds,
        "Seconds until the TLS certificate in use expires."
    );
    describe_counter!(ACME_ORDERS, "ACME certificate orders, by result.");
    // Series that may not happen for a while are there from the start, at 0, so a rate()
    // over them works from the first scrape.
    for reason in ["wrong", "malformed", "throttled"] {
        counter!(AUTH_FAILURES, "reason" => reason).increment(0);
    }
    for handling in ["refused", "dropped"] {
        counter!(MALFORMED, "handling" => handling).increment(0);
    }
    counter!(MESSAGES_ACCEPTED).increment(0);
    counter!(MESSAGES_DELIVERED).increment(0);
    counter!(ONE_WAY_CALLS).increment(0);
    for result in ["issued", "failed"] {
        counter!(ACME_ORDERS, "result" => result).increment(0);
    }
}

/// Records the quality of calls that ended: a sample per leg that carried media.
pub fn ended_calls(reports: &[openline_media::control::CallReport]) {
    for r in reports {
        for legs in &r.streams {
            for q in legs.iter().filter(|q| q.packets > 0) {
                metrics::histogram!(CALL_LOSS).record(q.loss);
                metrics::histogram!(CALL_JITTER).record(q.jitter_ms / 1000.0);
                metrics::histogram!(CALL_MOS).record(q.mos);
            }
        }
        if !r.problems().is_empty() {
            counter!(ONE_WAY_CALLS).increment(1);
        }
    }
}

/// The label for a method: the standard ones by name, any other token as "other" (a sender
/// must not be able to mint label values).
pub fn method_label(method: Method<'_>) -> &'static str {
    method.standard_name().unwrap_or("other")
}

/// Counts a request received.
pub fn request(method: Method<'_>) {
    counter!(REQUESTS, "method" => method_label(method)).increment(1);
}

/// Counts what is about to be sent, if it is a response.
pub fn sending(payload: &[u8]) {
    if let Some(rest) = payload.strip_prefix(b"SIP/2.0 ") {
        let class = match rest.first() {
            Some(b'1') => "1xx",
            Some(b'2') => "2xx",
            Some(b'3') => "3xx",
            Some(b'4') => "4xx",
            Some(b'5') => "5xx",
            _ => "6xx",
        };
        counter!(RESPONSES, "class" => class).increment(1);
    }
}

/// Counts a malformed message: `refused` when it was answered 400.
pub fn malformed(refused: bool) {
    let handling = if refused { "refused" } else { "dropped" };
    counter!(MALFORMED, "handling" => handling).increment(1);
}

/// Counts work refused at `limit`.
pub fn limited(limit: &'static str) {
    counter!(LIMITED, "limit" => limit).increment(1);
}

/// Counts an authentication outcome that failed, by reason (a challenge is not a failure).
pub fn auth(outcome: &AuthOutcome) {
    let reason = match outcome {
        AuthOutcome::Failed => "wrong",
        AuthOutcome::Malformed(_) => "malformed",
        AuthOutcome::Throttled(_) => "throttled",
        AuthOutcome::Authenticated(_) | AuthOutcome::Challenge { .. } => return,
    };
    counter!(AUTH_FAILURES, "reason" => reason).increment(1);
}

/// The core's levels, set once a second.
#[derive(Debug, Clone, Copy, Default)]
pub struct Levels {
    /// Transactions alive.
    pub transactions: usize,
    /// Presence subscriptions held.
    pub subscriptions: usize,
    /// Calls answered and not yet ended.
    pub calls: usize,
    /// Live bindings.
    pub bindings: usize,
    /// Stored messages owed.
    pub waiting: u64,
}

/// Sets the gauges from the core's levels and the relay's counts.
pub fn set_levels(levels: Levels, relay: Option<&RelayCounts>) {
    gauge!(TRANSACTIONS).set(levels.transactions as f64);
    gauge!(DIALOGS, "kind" => "subscription").set(levels.subscriptions as f64);
    gauge!(DIALOGS, "kind" => "call").set(levels.calls as f64);
    gauge!(BINDINGS).set(levels.bindings as f64);
    gauge!(MESSAGES_WAITING).set(levels.waiting as f64);
    if let Some(r) = relay {
        ended_calls(&r.take_ended());
        let calls = r.calls.load(Ordering::Relaxed) as f64;
        gauge!(RELAY_CALLS).set(calls);
        for (outcome, n) in [
            ("forwarded", &r.forwarded),
            ("wrong_source", &r.wrong_source),
            ("malformed", &r.malformed),
            ("undeliverable", &r.undeliverable),
        ] {
            counter!(RELAY_PACKETS, "outcome" => outcome).absolute(n.load(Ordering::Relaxed));
        }
    }
}

/// The certificate in use expires at `not_after` (seconds since the epoch); it is `now`.
pub fn set_certificate_expiry(not_after: u64, now: u64) {
    gauge!(TLS_EXPIRY).set(not_after as f64 - now as f64);
}

/// An ACME order ended: issued or failed.
pub fn acme_order(issued: bool) {
    let result = if issued { "issued" } else { "failed" };
    counter!(ACME_ORDERS, "result" => result).increment(1);
}

//! Kamailio with its rtpengine module drives openline-media over the ng protocol: SIPp's uac
//! plays a G.711 recording to SIPp's uas, which echoes it; both directions cross the relay
//! (issue #6 item 6).

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

const KAMAILIO: u16 = 5076;
const UAS: u16 = 5196;
const UAS_MEDIA: u16 = 6196;
const UAC: u16 = 5198;

/// Kamailio relaying every call to the uas, anchoring its media at the relay on `control`.
fn kamailio_config(control: SocketAddr) -> String {
    format!(
        r#"#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=1
listen=udp:127.0.0.1:{KAMAILIO}
disable_tcp=yes
auto_aliases=no
dns=no
rev_dns=no
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "rtpengine.so"
modparam("rtpengine", "rtpengine_sock", "udp:{control}")
request_route {{
	if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
	if (has_totag()) {{
		if (is_method("BYE")) {{ rtpengine_delete(); }}
		if (is_method("ACK") && !t_check_trans()) {{ rewritehostport("127.0.0.1:{UAS}"); forward(); exit; }}
		rewritehostport("127.0.0.1:{UAS}");
		t_relay();
		exit;
	}}
	if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
	t_check_trans();
	if (is_method("INVITE") && has_body("application/sdp")) {{
		rtpengine_offer();
		t_on_reply("MEDIA");
	}}
	rewritehostport("127.0.0.1:{UAS}");
	t_relay();
}}
onreply_route[MEDIA] {{
	if (has_body("application/sdp")) {{ rtpengine_answer(); }}
}}
"#
    )
}

#[test]
fn kamailio_rtpengine_module_anchors_a_sipp_call_with_rtp_both_ways_in_openline_media() {
    let dir = openline_tests::subject::scratch_dir("media-kamailio");
    let mut media = openline_tests::media::Media::start(&["--ports", "43000-43099"]);
    let control = media.control;
    let cfg = dir.join("kamailio.cfg");
    std::fs::write(&cfg, kamailio_config(control)).unwrap();
    let mut kamailio = openline_tests::Background(
        Command::new("kamailio")
            .arg("-f")
            .arg(&cfg)
            .args(["-DD", "-E", "-m", "64", "-M", "8", "-w"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("kamailio.log")).unwrap())
            .spawn()
            .expect("start kamailio (installed by scripts/install-test-deps)"),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let mut uas = openline_tests::media::echo_uas(&dir, UAS, UAS_MEDIA);
    let (ok, messages) =
        openline_tests::media::pcap_call(&dir, &format!("127.0.0.1:{KAMAILIO}"), "echo", UAC);
    assert!(
        ok,
        "the call failed:\n{}",
        &messages[..messages.len().min(4000)]
    );
    // The 200 the uac saw points its media at the relay, not at the uas.
    assert!(
        messages.contains("m=audio 430"),
        "SDP not rewritten to the relay:\n{messages}"
    );
    // Kamailio's rtpengine_delete on the BYE ended the call at the relay.
    let call_id = messages
        .lines()
        .find_map(|l| l.strip_prefix("Call-ID: "))
        .expect("a Call-ID")
        .trim()
        .to_string();
    let query = openline_tests::media::ng(
        control,
        &format!("q1 d7:command5:query7:call-id{}:{call_id}e", call_id.len()),
    );
    assert!(
        query.contains("unknown call-id"),
        "still there after the BYE: {query}"
    );
    // Both sides sent RTP through the relay: the uac's recording and the uas's echo of it.
    let (packets, sessions) = openline_tests::media::relayed(control);
    assert_eq!(packets.len(), 2, "{packets:?}");
    assert!(
        packets.iter().all(|&p| p > 50),
        "RTP both ways: {packets:?}"
    );
    assert_eq!(sessions, 0);
    uas.stop();
    kamailio.stop();
    media.stop();
}

//! openline-media as Kamailio's WebRTC bridge (issue #23): Kamailio 5.6 (websocket, registrar
//! and rtpengine modules, its usual WebRTC set-up) is the SIP server for a web phone tab on its
//! `ws:` listener and for baresip on UDP; it drives openline-media over the ng protocol with
//! rtpengine's flags (ICE=force/remove, DTLS=passive, UDP/TLS/RTP/SAVPF or RTP/AVP,
//! rtcp-mux-require/demux, generate-mid, SDES-off). The tab calls baresip, then baresip calls
//! the tab; each side's audio is measured where it arrives.

use super::*;
use openline_tests::audio::{hears, recording, tone_wav};
use openline_tests::baresip::Ua;
use openline_tests::media::{Media, free_udp_addr, relayed};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

/// Kamailio's script: a registrar (no digest: it is not what is tested) that relays calls by
/// location, anchoring each INVITE's media at the relay on `control` with the flags the SDP's
/// receiver needs.
fn kamailio_config(udp: SocketAddr, ws: SocketAddr, control: SocketAddr) -> String {
    format!(
        r#"#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=2
tcp_children=2
listen=udp:{udp}
listen=tcp:{ws}
tcp_accept_no_cl=yes
auto_aliases=no
alias="openline.test"
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
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "nathelper.so"
loadmodule "xhttp.so"
loadmodule "websocket.so"
loadmodule "rtpengine.so"
modparam("rtpengine", "rtpengine_sock", "udp:{control}")
modparam("nathelper|registrar", "received_avp", "$avp(RECEIVED)")
request_route {{
	if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
	if (proto == WS || proto == WSS) {{
		force_rport();
		if (is_method("REGISTER")) {{ fix_nated_register(); }}
		else if (is_method("INVITE")) {{ add_contact_alias(); }}
	}}
	if (has_totag()) {{
		if (loose_route()) {{
			if ($du == "") {{ handle_ruri_alias(); }}
			if (is_method("BYE")) {{ rtpengine_delete(); }}
			if (is_method("INVITE") && has_body("application/sdp")) {{ route(OFFER); }}
			t_relay();
			exit;
		}}
		if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
		sl_send_reply("404", "Not here");
		exit;
	}}
	if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
	t_check_trans();
	if (is_method("REGISTER")) {{ save("location"); exit; }}
	if (is_method("SUBSCRIBE|PUBLISH")) {{ sl_send_reply("489", "Bad Event"); exit; }}
	record_route();
	if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
	if (is_method("INVITE") && has_body("application/sdp")) {{ route(OFFER); }}
	t_relay();
}}
# The SDP goes to the request's destination: a WebSocket contact is a browser.
route[OFFER] {{
	if ($du =~ "transport=ws" || $ru =~ "transport=ws") {{
		rtpengine_offer("replace-origin replace-session-connection ICE=force DTLS=passive UDP/TLS/RTP/SAVPF rtcp-mux-require generate-mid SDES-off");
	}} else {{
		rtpengine_offer("replace-origin replace-session-connection ICE=remove RTP/AVP rtcp-mux-demux");
	}}
	t_on_reply("ANSWER");
}}
onreply_route[ANSWER] {{
	if (proto == WS || proto == WSS) {{ add_contact_alias(); }}
	if (has_body("application/sdp")) {{
		if (proto == WS || proto == WSS) {{
			rtpengine_answer("replace-origin replace-session-connection ICE=remove RTP/AVP rtcp-mux-demux");
		}} else {{
			rtpengine_answer("replace-origin replace-session-connection ICE=force UDP/TLS/RTP/SAVPF rtcp-mux-require generate-mid");
		}}
	}}
}}
event_route[xhttp:request] {{
	set_reply_close();
	set_reply_no_connect();
	if ($hdr(Upgrade) =~ "websocket" && $hdr(Connection) =~ "Upgrade" && $rm =~ "GET") {{
		if (ws_handle_handshake()) {{ exit; }}
	}}
	xhttp_reply("404", "Not Found", "", "");
}}
"#
    )
}

/// The web phone's files, as openline serves them, with a `config.json` that sends the page to
/// Kamailio's `ws:` listener, served over plain HTTP on loopback (a secure context for the
/// microphone) by Python's static server; the page's URL.
fn page_for(dir: &std::path::Path, ws: SocketAddr) -> (openline_tests::Background, String) {
    let site = dir.join("site");
    std::fs::create_dir_all(&site).unwrap();
    let web = openline_tests::repo_file("web/phone");
    for f in ["index.html", "phone.js", "calls.js", "phone.css"] {
        std::fs::copy(web.join(f), site.join(f)).unwrap();
    }
    std::fs::copy(web.join("vendor/jssip.min.js"), site.join("jssip.min.js")).unwrap();
    std::fs::write(
        site.join("config.json"),
        format!(r#"{{"ws":[{}],"wss":[]}}"#, ws.port()),
    )
    .unwrap();
    let port = openline_tests::pebble::free_port();
    let server = openline_tests::Background(
        Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(&site)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3's http.server"),
    );
    listening(SocketAddr::from(([127, 0, 0, 1], port)));
    (server, format!("http://127.0.0.1:{port}/index.html"))
}

#[test]
fn kamailio_bridges_a_tab_and_baresip_through_openline_media_both_ways() {
    let dir = scratch_dir("kamailio-webrtc");
    let mut media = Media::start(&["--ports", "43200-43299"]);
    let udp = free_udp_addr();
    let ws = SocketAddr::from(([127, 0, 0, 1], openline_tests::pebble::free_port()));
    let cfg = dir.join("kamailio.cfg");
    std::fs::write(&cfg, kamailio_config(udp, ws, media.control)).unwrap();
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
    listening(ws);
    let (_site, url) = page_for(&dir, ws);

    let carol_heard = dir.join("carol-heard.wav");
    let mut carol = Ua::start_with_audio(
        udp,
        "carol@openline.test",
        5492,
        dir.join("carol.log"),
        &[],
        ("sine:1000", carol_heard.to_str().unwrap()),
    );
    let mic = dir.join("mic.wav");
    tone_wav(&mic, 440.0, 60);
    let (mut tab, first) =
        Tab::open_with_microphone(&url, ("bob@openline.test", "any"), &dir, Some(&mic));
    assert_eq!(first, "signed-in", "the tab registers at Kamailio's ws:");

    // The tab calls baresip: Kamailio asks for RTP/AVP towards it, WebRTC back to the tab.
    assert_eq!(tab.command("call carol@openline.test"), "calling");
    carol.wait_for("Incoming call from:");
    carol.command("/accept");
    assert!(
        tab.command("callstate active")
            .starts_with("callstate active In call")
    );
    carol.wait_for("Call established");
    let audio = tab.command("audio");
    let (received, energy, _) = audio_of(&audio);
    assert!(received > 100, "baresip's RTP reaches the tab: {audio}");
    assert!(energy > 0.0, "and is heard there: {audio}");
    assert_eq!(tab.command("sdp"), "sdp");
    let remote = std::fs::read_to_string(dir.join("sdp-remote.txt")).unwrap();
    assert!(
        remote.contains("UDP/TLS/RTP/SAVPF") && remote.contains("m=audio 432"),
        "the tab's answer is the relay's WebRTC side: {remote}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(tab.command("press hangup"), "pressed");
    carol.wait_for("session closed");
    carol.quit();
    let (share, _) = hears(&recording(&carol_heard), 440.0);
    assert!(share > 0.7, "baresip hears the tab's 440 Hz: {share}");
    let (packets, sessions) = relayed(media.control);
    assert!(
        packets.len() == 2 && packets.iter().all(|&p| p > 100),
        "both ways through openline-media: {packets:?}"
    );
    assert_eq!(
        sessions, 0,
        "Kamailio's rtpengine_delete on the BYE ended it"
    );

    // baresip calls the tab: Kamailio asks for WebRTC towards it.
    let dave_heard = dir.join("dave-heard.wav");
    let mut dave = Ua::start_with_audio(
        udp,
        "dave@openline.test",
        5494,
        dir.join("dave.log"),
        &[],
        ("sine:1000", dave_heard.to_str().unwrap()),
    );
    dave.command("/dial sip:bob@openline.test");
    assert!(
        tab.command("callstate incoming")
            .starts_with("callstate incoming Incoming call")
    );
    assert_eq!(tab.command("press answer"), "pressed");
    dave.wait_for("Call established");
    assert!(
        tab.command("callstate active")
            .starts_with("callstate active")
    );
    let audio = tab.command("audio");
    let (received, energy, _) = audio_of(&audio);
    assert!(
        received > 100 && energy > 0.0,
        "dave heard in the tab: {audio}"
    );
    std::thread::sleep(Duration::from_secs(2));
    dave.command("/hangup");
    dave.wait_for("terminated (duration");
    assert!(tab.command("callstate idle").starts_with("callstate idle"));
    dave.quit();
    let (share, _) = hears(&recording(&dave_heard), 440.0);
    assert!(share > 0.7, "dave hears the tab's 440 Hz: {share}");
    assert_eq!(relayed(media.control).1, 0, "ended at the relay too");

    tab.command("quit");
    kamailio.stop();
    media.stop();
}

/// Waits (10 s at most) until something accepts TCP connections at `at`.
fn listening(at: SocketAddr) {
    assert!(
        openline_tests::eventually(Duration::from_secs(10), || {
            std::net::TcpStream::connect(at).is_ok()
        }),
        "nothing listens at {at}"
    );
}

// Calls in the web phone: one at a time, audio only. The server's media relay bridges the
// browser's WebRTC to SIP phones (ICE-lite, DTLS-SRTP on its side), so no STUN or TURN
// server is needed here. The call bar shows what is happening; the conversation keeps a
// line for each call (missed, declined, how long it lasted).
"use strict";

const calls = { session: null, peer: null, started: 0, timer: null, muted: false, held: false };

function callBar() { return document.getElementById("call"); }

function showCall(peer, status, buttons) {
  const bar = callBar();
  bar.hidden = false;
  bar.dataset.state = status.key;
  document.getElementById("call-peer").textContent = peer;
  document.getElementById("call-avatar").textContent = initials(peer);
  document.getElementById("call-status").textContent = status.text;
  for (const b of bar.querySelectorAll("button[data-action]")) {
    b.hidden = !buttons.includes(b.dataset.action);
  }
  document.getElementById("keypad").hidden = true;
  document.getElementById("call-button").hidden = true;
}

function hideCall() {
  const bar = callBar();
  bar.hidden = true;
  bar.dataset.state = "idle";
  clearInterval(calls.timer);
  calls.timer = null;
  document.getElementById("remote-audio").srcObject = null;
  document.getElementById("call-button").hidden = !state.current;
}

function duration(ms) {
  const s = Math.floor(ms / 1000);
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

function inCallText() {
  const parts = [calls.held ? "On hold" : "In call", duration(Date.now() - calls.started)];
  if (calls.muted) parts.push("muted");
  return parts.join(" · ");
}

function showInCall() {
  showCall(calls.peer, { key: calls.held ? "held" : "active", text: inCallText() },
    ["mute", "hold", "keypad", "hangup"]);
  document.querySelector('[data-action="mute"]').textContent = calls.muted ? "Unmute" : "Mute";
  document.querySelector('[data-action="hold"]').textContent = calls.held ? "Resume" : "Hold";
}

function note(peer, text) {
  receive(peer, text, null, "notice");
  // A line about a call is not an unread message.
  conversation(peer).unread = 0;
  renderList();
}

// The far side's audio plays as soon as its track arrives.
function hearRemote(pc) {
  pc.addEventListener("track", (e) => {
    const audio = document.getElementById("remote-audio");
    audio.srcObject = e.streams[0] || new MediaStream([e.track]);
    audio.play().catch(() => { /* autoplay refused: the next click plays it */ });
  });
}

function follow(session, peer, outgoing) {
  calls.session = session;
  calls.peer = peer;
  calls.muted = false;
  calls.held = false;
  if (session.connection) hearRemote(session.connection);
  session.on("peerconnection", (e) => hearRemote(e.peerconnection));
  session.on("progress", () => {
    if (outgoing) showCall(peer, { key: "ringing", text: "Ringing…" }, ["hangup"]);
  });
  session.on("confirmed", () => {
    calls.started = Date.now();
    showInCall();
    calls.timer = setInterval(() => {
      if (calls.session === session) document.getElementById("call-status").textContent = inCallText();
    }, 1000);
  });
  session.on("hold", () => { calls.held = true; showInCall(); });
  session.on("unhold", () => { calls.held = false; showInCall(); });
  session.on("muted", () => { calls.muted = true; showInCall(); });
  session.on("unmuted", () => { calls.muted = false; showInCall(); });
  session.on("ended", () => {
    note(peer, (outgoing ? "Outgoing call" : "Call") + " · " + duration(Date.now() - calls.started));
    done(session);
  });
  session.on("failed", (e) => {
    note(peer, failure(e, outgoing));
    done(session);
  });
}

function failure(e, outgoing) {
  const cause = e.cause || "";
  const reason = e.message && e.message.getHeader ? e.message.getHeader("Reason") || "" : "";
  if (!outgoing) {
    if (/completed elsewhere|answered elsewhere/i.test(reason) || cause === JsSIP.C.causes.ANSWERED_ELSEWHERE) {
      return "Call answered on another device";
    }
    if (e.originator === "local" && cause === JsSIP.C.causes.REJECTED) return "Call declined";
    return "Missed call";
  }
  if (cause === JsSIP.C.causes.BUSY) return "Call not answered: busy";
  if (cause === JsSIP.C.causes.REJECTED) return "Call declined";
  if (cause === JsSIP.C.causes.CANCELED) return "Call cancelled";
  if (cause === JsSIP.C.causes.UNAVAILABLE || cause === JsSIP.C.causes.NOT_FOUND) {
    return "Call not answered: unavailable";
  }
  if (cause === JsSIP.C.causes.USER_DENIED_MEDIA_ACCESS) return "Call failed: no microphone";
  return "Call failed: " + (e.message && e.message.reason_phrase ? e.message.reason_phrase : cause);
}

function done(session) {
  if (calls.session !== session) return;
  calls.session = null;
  hideCall();
}

const media = { mediaConstraints: { audio: true, video: false }, pcConfig: { iceServers: [] } };

function startCall(peer) {
  if (calls.session || !state.ua) return;
  showCall(peer, { key: "calling", text: "Calling…" }, ["hangup"]);
  try {
    const session = state.ua.call("sip:" + peer, media);
    follow(session, peer, true);
  } catch (err) {
    hideCall();
    note(peer, "Call failed: " + err.message);
  }
}

// An incoming call rings while this tab has none; a second one is told we are busy.
function incoming(session) {
  const peer = plainAddress(session.remote_identity.uri);
  if (calls.session) {
    session.terminate({ status_code: 486, reason_phrase: "Busy Here" });
    note(peer, "Missed call (you were in another call)");
    return;
  }
  follow(session, peer, false);
  open(peer);
  showCall(peer, { key: "incoming", text: "Incoming call" }, ["answer", "decline"]);
}

function act(action) {
  const s = calls.session;
  if (!s) return;
  switch (action) {
    case "answer":
      showCall(calls.peer, { key: "connecting", text: "Connecting…" }, ["hangup"]);
      s.answer(media);
      break;
    case "decline":
      s.terminate({ status_code: 603, reason_phrase: "Decline" });
      break;
    case "hangup":
      s.terminate();
      break;
    case "mute":
      if (calls.muted) s.unmute({ audio: true }); else s.mute({ audio: true });
      break;
    case "hold":
      if (calls.held) s.unhold(); else s.hold();
      break;
    case "keypad":
      document.getElementById("keypad").hidden = !document.getElementById("keypad").hidden;
      break;
    default:
  }
}

function dial(tone) {
  if (!calls.session) return;
  // RFC 4733 events in the audio stream: what desk phones and the relay carry.
  calls.session.sendDTMF(tone, { transportType: "RFC2833", duration: 160 });
  const sent = document.getElementById("keypad-sent");
  sent.textContent = (sent.textContent + tone).slice(-16);
}

// What a test reads of the call's audio: packets and energy received, packets sent.
window.openlineCallStats = async () => {
  const pc = calls.session && calls.session.connection;
  if (!pc) return null;
  const out = { packetsReceived: 0, totalAudioEnergy: 0, packetsSent: 0 };
  (await pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio") {
      out.packetsReceived = r.packetsReceived || 0;
      out.totalAudioEnergy = r.totalAudioEnergy || 0;
    }
    if (r.type === "outbound-rtp" && r.kind === "audio") out.packetsSent = r.packetsSent || 0;
  });
  return out;
};

// Whether the call's audio sender can send RFC 4733 events (negotiated telephone-event).
window.openlineCanSendDtmf = () => {
  const pc = calls.session && calls.session.connection;
  const sender = pc && pc.getSenders().find((s) => s.track && s.track.kind === "audio");
  return Boolean(sender && sender.dtmf && sender.dtmf.canInsertDTMF);
};

// The call's SDP, local and remote, for a test to keep beside its screenshots.
window.openlineCallSdp = () => {
  const pc = calls.session && calls.session.connection;
  return pc ? [pc.localDescription && pc.localDescription.sdp, pc.remoteDescription && pc.remoteDescription.sdp] : [null, null];
};

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("call-button").addEventListener("click", () => {
    if (state.current) startCall(state.current);
  });
  for (const b of callBar().querySelectorAll("button[data-action]")) {
    b.addEventListener("click", () => act(b.dataset.action));
  }
  for (const b of document.querySelectorAll("#keypad button")) {
    b.addEventListener("click", () => dial(b.textContent));
  }
});

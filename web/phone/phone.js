// Openline's web phone: SIP over WebSocket with JsSIP. Sign in, then chat: conversations by
// address, messages as SIP MESSAGE (the server keeps them for devices that are away and
// delivers them when this tab registers). Kept in this tab's storage, per account.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { ua: null, me: null, peers: new Map(), current: null };

function initials(address) {
  const user = address.split("@")[0] || "?";
  return user.slice(0, 2);
}

function plainAddress(uri) {
  return String(uri).replace(/^sips?:/, "").split(";")[0];
}

function time(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function storageKey() {
  return "openline.chats." + state.me;
}

function save() {
  const all = {};
  for (const [peer, c] of state.peers) all[peer] = c.messages;
  try { localStorage.setItem(storageKey(), JSON.stringify(all)); } catch (_) { /* full: keep in memory */ }
}

function load() {
  try {
    const all = JSON.parse(localStorage.getItem(storageKey()) || "{}");
    for (const [peer, messages] of Object.entries(all)) state.peers.set(peer, { messages, unread: 0 });
  } catch (_) { /* a broken store starts empty */ }
}

function conversation(peer) {
  if (!state.peers.has(peer)) state.peers.set(peer, { messages: [], unread: 0 });
  const c = state.peers.get(peer);
  if (state.ua && !c.watch) watch(peer, c);
  return c;
}

// Presence (RFC 3856): a SUBSCRIBE per contact; the server says open while one of their
// devices is registered. Pending (no body) until they allow us: shown as unknown.
function watch(peer, c) {
  c.presence = "unknown";
  try {
    c.watch = state.ua.subscribe("sip:" + peer, "presence", "application/pidf+xml", { expires: 600 });
  } catch (_) {
    return;
  }
  c.watch.on("notify", (isFinal, request, body) => {
    if (body && /<basic>\s*open\s*<\/basic>/i.test(body)) c.presence = "online";
    else if (body && /<basic>\s*closed\s*<\/basic>/i.test(body)) c.presence = "offline";
    if (isFinal) { c.presence = "unknown"; c.watch = null; }
    renderList();
    if (peer === state.current) renderMessages();
  });
  c.watch.on("terminated", () => { c.watch = null; });
  c.watch.subscribe();
}

const presenceText = { online: "Online", offline: "Offline", unknown: "" };

function renderList() {
  const list = $("conversations");
  list.replaceChildren();
  const ordered = [...state.peers.entries()].sort((a, b) => last(b[1]) - last(a[1]));
  for (const [peer, c] of ordered) {
    const li = document.createElement("li");
    li.className = "conversation" + (peer === state.current ? " active" : "");
    li.dataset.peer = peer;
    const avatar = document.createElement("span");
    avatar.className = "avatar presence-" + (c.presence || "unknown");
    avatar.textContent = initials(peer);
    avatar.title = presenceText[c.presence] || "";
    const text = document.createElement("div");
    text.className = "text";
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = peer;
    const preview = document.createElement("div");
    preview.className = "preview";
    const latest = c.messages[c.messages.length - 1];
    preview.textContent = latest ? (latest.mine ? "You: " : "") + latest.text : "No messages yet";
    text.append(name, preview);
    li.append(avatar, text);
    if (c.unread > 0) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = String(c.unread);
      li.append(badge);
    }
    li.addEventListener("click", () => open(peer));
    list.append(li);
  }
}

function last(c) {
  const m = c.messages[c.messages.length - 1];
  return m ? m.at : 0;
}

function renderMessages() {
  const ol = $("messages");
  ol.replaceChildren();
  const c = state.current && state.peers.get(state.current);
  $("empty").hidden = Boolean(c && c.messages.length);
  $("composer").hidden = !state.current;
  // One call at a time: no Call button while one is on (calls.js).
  $("call-button").hidden = !state.current || Boolean(calls.session);
  $("peer-name").textContent = state.current || "Pick a conversation";
  $("peer-presence").textContent = c ? presenceText[c.presence] || "" : "";
  $("peer-avatar").textContent = state.current ? initials(state.current) : "";
  if (!c) return;
  for (const m of c.messages) {
    const li = document.createElement("li");
    li.className = "message " + (m.mine ? "mine" : "theirs") + (m.status === "failed" ? " failed" : "") +
      (m.kind === "notice" ? " notice" : "");
    li.textContent = m.text;
    const meta = document.createElement("span");
    meta.className = "meta";
    const marks = { sending: "sending…", delivered: "✓ delivered", stored: "✓ waiting for their device", failed: "not sent", elsewhere: "sent from another device" };
    meta.textContent = time(m.at) + (m.mine ? " · " + (marks[m.status] || "") : "");
    li.append(meta);
    ol.append(li);
  }
  ol.scrollTop = ol.scrollHeight;
}

function open(peer) {
  state.current = peer;
  conversation(peer).unread = 0;
  renderList();
  renderMessages();
  $("draft").focus();
}

function receive(from, text, sent, kind) {
  const c = conversation(from);
  // A message that waited on the server carries the Date it was sent.
  const at = sent && !Number.isNaN(Date.parse(sent)) ? Date.parse(sent) : Date.now();
  c.messages.push({ mine: false, text, at, kind });
  if (from !== state.current) c.unread += 1;
  save();
  renderList();
  if (from === state.current) renderMessages();
}

function sentElsewhere(to, text, sent) {
  const c = conversation(to);
  const at = sent && !Number.isNaN(Date.parse(sent)) ? Date.parse(sent) : Date.now();
  c.messages.push({ mine: true, text, at, status: "elsewhere" });
  save();
  renderList();
  if (to === state.current) renderMessages();
}

function send(text) {
  const peer = state.current;
  const m = { mine: true, text, at: Date.now(), status: "sending" };
  conversation(peer).messages.push(m);
  renderList();
  renderMessages();
  state.ua.sendMessage("sip:" + peer, text, {
    contentType: "text/plain;charset=utf-8",
    eventHandlers: {
      succeeded: (e) => {
        m.status = e.response && e.response.status_code === 202 ? "stored" : "delivered";
        save();
        renderMessages();
      },
      failed: () => {
        m.status = "failed";
        save();
        renderMessages();
      },
    },
  });
  save();
}

function setState(text, kind) {
  $("me-state-text").textContent = text;
  $("me-state").className = "state " + kind;
}

async function websocketUrl() {
  const config = await (await fetch("config.json")).json();
  const secure = location.protocol === "https:";
  const ports = secure ? config.wss : config.ws;
  if (!ports || ports.length === 0) throw new Error("this server has no " + (secure ? "wss" : "ws") + " listener");
  return (secure ? "wss://" : "ws://") + location.hostname + ":" + ports[0];
}

async function signIn(address, password) {
  const url = await websocketUrl();
  const socket = new JsSIP.WebSocketInterface(url);
  const ua = new JsSIP.UA({
    sockets: [socket],
    uri: "sip:" + address,
    password,
    register: true,
    session_timers: false,
    user_agent: "JsSIP/" + JsSIP.version + " (Openline web phone)",
  });
  state.ua = ua;
  return new Promise((resolve, reject) => {
    let settled = false;
    ua.on("registered", () => {
      setState("Online", "online");
      if (!settled) { settled = true; resolve(); }
    });
    ua.on("registrationFailed", (e) => {
      setState("Not signed in", "offline");
      if (!settled) { settled = true; ua.stop(); reject(new Error(e.cause || "refused")); }
    });
    ua.on("disconnected", () => setState("Reconnecting…", "offline"));
    // Calls (calls.js): the server's relay bridges this tab's WebRTC to SIP phones.
    ua.on("newRTCSession", (e) => {
      if (e.originator === "remote") incoming(e.session);
    });
    ua.on("newMessage", (e) => {
      if (e.originator !== "remote") return;
      const request = e.request;
      // What this person sent from another of their devices: the server copies it to the
      // others (Openline-Copy: sent), so every device has the whole conversation.
      if (request.getHeader("Openline-Copy") === "sent") {
        sentElsewhere(plainAddress(request.to.uri), request.body || "", request.getHeader("Date"));
        return;
      }
      receive(plainAddress(request.from.uri), request.body || "", request.getHeader("Date"));
    });
    ua.start();
  });
}

$("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const address = $("address").value.trim().replace(/^sip:/, "");
  if (!/^[^@\s]+@[^@\s]+$/.test(address)) {
    $("signin-status").textContent = "Write your address as name@domain.";
    return;
  }
  $("signin-button").disabled = true;
  $("signin-status").textContent = "";
  // What this tab kept, before the server delivers what waited while it was away.
  state.me = address;
  state.peers = new Map();
  load();
  try {
    await signIn(address, $("password").value);
    $("signin").hidden = true;
    $("app").hidden = false;
    $("me-name").textContent = address;
    $("me-avatar").textContent = initials(address);
    for (const [peer, c] of state.peers) if (!c.watch) watch(peer, c);
    renderList();
    renderMessages();
  } catch (err) {
    $("signin-status").textContent = "Could not sign in: " + err.message;
  } finally {
    $("signin-button").disabled = false;
  }
});

$("new-chat").addEventListener("submit", (e) => {
  e.preventDefault();
  const peer = $("new-chat-address").value.trim().replace(/^sip:/, "");
  if (!/^[^@\s]+@[^@\s]+$/.test(peer)) return;
  $("new-chat-address").value = "";
  conversation(peer);
  open(peer);
});

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("draft").value.trim();
  if (!text || !state.current) return;
  $("draft").value = "";
  send(text);
});

$("draft").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    $("composer").requestSubmit();
  }
});

// A person at the web phone, in Debian's chromium headless: signs in, then takes commands on
// stdin, one a line, and answers each on stdout (the Rust test reads them):
//   open PEER            start or open the conversation with PEER
//   send TEXT            type TEXT and press Enter; answers "sent STATUS" once it shows one
//   expect PEER TEXT     wait for TEXT from PEER (opening the conversation); "seen"
//   mine PEER TEXT       wait for TEXT shown as sent by this person (from another device); "seen"
//   unread PEER          the unread badge of PEER's conversation; "unread N"
//   presence PEER STATE  wait until PEER's avatar shows STATE (online, offline); "presence STATE"
//   shot NAME            a screenshot, DIR/NAME.png; "shot"
//   call PEER            open PEER's conversation and press Call; "calling"
//   callstate STATE      wait until the call bar shows STATE (ringing, incoming, active,
//                        held, idle); "callstate STATE TEXT" with what the bar says
//   press ACTION         press a call button (answer, decline, hangup, mute, hold); "pressed"
//   dtmf DIGITS          press the keypad's digits; "dialed DIGITS"
//   audio                wait until the call's audio flows both ways (getStats);
//                        "audio RECEIVED ENERGY SENT"
//   notice PEER TEXT     wait for a call line with TEXT in PEER's conversation; "seen"
//   sdp                  the call's local and remote SDP into DIR/sdp-*.txt; "sdp"
//   crash                close the tab without hanging up (as if it were killed); "crashed"
//   quit
// Usage: node phone.mjs URL ADDRESS PASSWORD DIR [MICROPHONE.wav]
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";
import fs from "node:fs";

const [url, address, password, dir, microphone] = process.argv.slice(2);
const say = (line) => process.stdout.write(line + "\n");
const timeout = 15000;

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  // No network but the test's own; the test CA is not the system's, so certificate errors
  // are ignored for this context only.
  // The microphone is a WAV the test wrote (a 440 Hz tone), granted without a prompt.
  args: ["--ignore-certificate-errors", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
    ...(microphone ? ["--use-file-for-fake-audio-capture=" + microphone] : [])],
});
const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1100, height: 700 } });
const page = await context.newPage();
// Every wait ends before the Rust side stops listening (30 s), with a reason.
page.setDefaultTimeout(timeout);
page.on("console", (m) => { if (m.type() === "error") process.stderr.write("page: " + m.text() + "\n"); });
try {
  await page.goto(url, { timeout });
  await page.fill("#address", address);
  await page.fill("#password", password);
  await page.click("#signin-button");
  await page.waitForSelector("#app:not([hidden])", { timeout });
  await page.waitForSelector("#me-state.online", { timeout });
  say("signed-in");
} catch (e) {
  const status = await page.textContent("#signin-status").catch(() => "");
  say("failed " + (status || e.message).replace(/\n/g, " "));
  await page.screenshot({ path: dir + "/signin-failed.png" }).catch(() => {});
  await browser.close();
  process.exit(1);
}

async function openConversation(peer) {
  const item = page.locator(`li.conversation[data-peer="${peer}"]`);
  if (await item.count() === 0) {
    await page.fill("#new-chat-address", peer);
    await page.press("#new-chat-address", "Enter");
  } else {
    await item.click();
  }
  await page.waitForSelector(`li.conversation.active[data-peer="${peer}"]`, { timeout });
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const [command, ...rest] = line.split(" ");
  try {
    if (command === "open") {
      await openConversation(rest[0]);
      say("opened");
    } else if (command === "send") {
      const text = rest.join(" ");
      await page.fill("#draft", text);
      await page.press("#draft", "Enter");
      const mine = page.locator(".message.mine").last();
      await page.waitForFunction(() => {
        const all = document.querySelectorAll(".message.mine .meta");
        const last = all[all.length - 1];
        return last && !last.textContent.includes("sending");
      }, null, { timeout });
      const meta = await mine.locator(".meta").textContent();
      say("sent " + (meta.includes("waiting") ? "stored" : meta.includes("delivered") ? "delivered" : "failed"));
    } else if (command === "expect") {
      const [peer, ...words] = rest;
      const text = words.join(" ");
      await page.waitForSelector(`li.conversation[data-peer="${peer}"]`, { timeout });
      await openConversation(peer);
      await page.locator(".message.theirs", { hasText: text }).first().waitFor({ timeout });
      say("seen");
    } else if (command === "mine") {
      const [peer, ...words] = rest;
      await page.waitForSelector(`li.conversation[data-peer="${peer}"]`, { timeout });
      await openConversation(peer);
      await page.locator(".message.mine", { hasText: words.join(" ") }).first().waitFor({ timeout });
      say("seen");
    } else if (command === "unread") {
      const badge = page.locator(`li.conversation[data-peer="${rest[0]}"] .badge`);
      await page.waitForSelector(`li.conversation[data-peer="${rest[0]}"]`, { timeout });
      say("unread " + ((await badge.count()) ? (await badge.textContent()) : "0"));
    } else if (command === "presence") {
      const [peer, want] = rest;
      await page.waitForSelector(`li.conversation[data-peer="${peer}"] .avatar.presence-${want}`, { timeout });
      say("presence " + want);
    } else if (command === "shot") {
      await page.screenshot({ path: `${dir}/${rest[0]}.png` });
      say("shot");
    } else if (command === "call") {
      await openConversation(rest[0]);
      await page.click("#call-button");
      say("calling");
    } else if (command === "callstate") {
      await page.waitForSelector(`#call[data-state="${rest[0]}"]`, { timeout, state: "attached" });
      say("callstate " + rest[0] + " " + ((await page.textContent("#call-status")) || ""));
    } else if (command === "press") {
      await page.click(`#call button[data-action="${rest[0]}"]`);
      say("pressed");
    } else if (command === "dtmf") {
      if (await page.isHidden("#keypad")) await page.click('#call button[data-action="keypad"]');
      for (const digit of rest[0]) {
        await page.click(`#keypad button:text-is("${digit}")`);
        await page.waitForTimeout(250);
      }
      const can = await page.evaluate(() => window.openlineCanSendDtmf());
      say("dialed " + rest[0] + (can ? "" : " (the browser cannot send RFC 4733 events)"));
    } else if (command === "audio") {
      let stats = null;
      for (let i = 0; i < 60; i++) {
        stats = await page.evaluate(() => window.openlineCallStats());
        if (stats && stats.packetsReceived > 100 && stats.totalAudioEnergy > 0 && stats.packetsSent > 100) break;
        await page.waitForTimeout(250);
      }
      say(stats ? `audio ${stats.packetsReceived} ${stats.totalAudioEnergy} ${stats.packetsSent}` : "audio none");
    } else if (command === "sdp") {
      const [local, remote] = await page.evaluate(() => window.openlineCallSdp());
      fs.writeFileSync(`${dir}/sdp-local.txt`, local || "");
      fs.writeFileSync(`${dir}/sdp-remote.txt`, remote || "");
      say("sdp");
    } else if (command === "notice") {
      const [peer, ...words] = rest;
      await openConversation(peer);
      await page.locator(".message.notice", { hasText: words.join(" ") }).first().waitFor({ timeout });
      say("seen");
    } else if (command === "crash") {
      await context.close();
      say("crashed");
    } else if (command === "quit") {
      break;
    } else {
      say("unknown " + command);
    }
  } catch (e) {
    await page.screenshot({ path: `${dir}/error-${command}.png` }).catch(() => {});
    say("error " + e.message.split("\n")[0]);
  }
}
await browser.close();

// wm_jax play page: draws the frames the server generates and sends the keys held down.
// Protocol: see wm_jax/serve/session.py. Everything the tests read is on window.wmPlay.
"use strict";

const $ = (id) => document.getElementById(id);
const screen = $("screen");
const screenCtx = screen.getContext("2d");
const offscreen = document.createElement("canvas"); // frames arrive at the world's resolution
const offCtx = offscreen.getContext("2d");
const decoder = new TextDecoder();
const DISPLAY_WIDTH = 512;

const ALIVE_MS = 10000; // "alive" while nothing else is sent (paused): the server closes silent pages
const play = {
  ws: null, world: null, bindings: new Map(), held: new Set(), seq: 0, loading: null,
  inputTimes: new Map(), // seq -> performance.now() of the key change, until a frame answers it
  frameTimes: [], frames: 0, fps: 0, latency: null, lastHeader: null, paused: false,
  errors: [], maxUpload: 16 * 1024 * 1024, recorder: null, chunks: [], recordedBytes: 0,
  firstGenerated: null, // the first generated frame (ImageData) since the world last (re)started
};

function log(text, isError = false) {
  const item = document.createElement("li");
  item.textContent = text;
  if (isError) { item.className = "error"; play.errors.push(text); }
  $("log").prepend(item);
  while ($("log").children.length > 30) $("log").lastChild.remove();
}

function overlay(text) {
  $("overlay").textContent = text || "";
  $("overlay").hidden = !text;
}

// --- keys: browser KeyboardEvent -> the project's key names (wm_jax.actions) -------------------
// The world says which key a player presses for each of its keys ("press"): Ctrl and Alt stand
// in as plain keys (e.g. f), since the browser acts on Ctrl/Alt combinations itself (Ctrl+W
// closes the tab). The page sends the model's own key names.
const CODE_NAMES = {
  ArrowUp: "up", ArrowDown: "down", ArrowLeft: "left", ArrowRight: "right", Space: "space",
  ShiftLeft: "shift", ShiftRight: "shift", ControlLeft: "ctrl", ControlRight: "ctrl",
  AltLeft: "alt", AltRight: "alt", Tab: "tab", Enter: "enter", Escape: "escape",
};
function keyName(event) {
  const code = event.code || "";
  if (/^Key[A-Z]$/.test(code)) return code.slice(3).toLowerCase();
  if (/^Digit[0-9]$/.test(code)) return code.slice(5);
  if (CODE_NAMES[code]) return CODE_NAMES[code];
  const key = (event.key || "").toLowerCase(); // no physical code (some synthetic events)
  return { " ": "space", arrowup: "up", arrowdown: "down", arrowleft: "left", arrowright: "right", control: "ctrl" }[key] || key;
}

function sendKeys() {
  play.seq += 1;
  play.inputTimes.set(play.seq, performance.now());
  send({ type: "keys", keys: [...play.held], seq: play.seq });
  for (const item of $("keys").children) item.classList.toggle("held", play.held.has(item.dataset.key));
}

function onKey(event, down) {
  if (event.target && event.target.tagName === "SELECT") return;
  const name = play.bindings.get(keyName(event));
  if (!name) return; // leave the browser's own shortcuts alone
  event.preventDefault();
  if (down === play.held.has(name)) return; // auto-repeat
  if (down) play.held.add(name); else play.held.delete(name);
  sendKeys();
}
window.addEventListener("keydown", (e) => onKey(e, true));
window.addEventListener("keyup", (e) => onKey(e, false));
// A key released while the page had no focus never sends keyup: let go of everything.
window.addEventListener("blur", () => { if (play.held.size) { play.held.clear(); sendKeys(); } });

// --- connection --------------------------------------------------------------------------------
function send(message) {
  if (play.ws && play.ws.readyState === WebSocket.OPEN) play.ws.send(JSON.stringify(message));
}

function connect() {
  const ws = new WebSocket(`ws://${location.host}/ws`);
  ws.binaryType = "arraybuffer";
  play.ws = ws;
  ws.onmessage = (event) => (typeof event.data === "string" ? onMessage(JSON.parse(event.data)) : onFrame(event.data));
  ws.onclose = (event) => {
    if (event.code !== 1013) overlay("Disconnected from the server. Reload the page to play again.");
    log(`connection closed (${event.code}${event.reason ? ": " + event.reason : ""})`, event.code !== 1000);
  };
}

function onMessage(message) {
  if (message.type === "loading") {
    showLoading(message.world);
  } else if (message.type === "world") {
    showWorld(message.world, message.start);
  } else if (message.type === "error") {
    log(message.message, true);
    if (play.loading && message.message.startsWith("cannot load world")) { // the old world plays on
      play.loading = null;
      overlay(play.paused ? "paused" : "");
      if (play.world) $("world").value = play.world.id;
    }
  } else if (message.type === "status") {
    log(message.message);
    if (!play.world) overlay(message.message);
  } else if (message.type === "busy") {
    overlay(message.message);
    log(message.message, true);
  }
}

// Loading a world takes seconds (compiling) and no frames come: blank the canvas, say so with
// the time spent, and forget the latency clock (a key pressed now is answered by the new world).
function resetLatency() {
  play.latency = null;
  play.inputTimes.clear();
  play.frameTimes = [];
}

function showLoading(name) {
  if (!play.loading || play.loading.world !== name) play.loading = { world: name, since: performance.now() };
  resetLatency();
  screenCtx.fillStyle = "#000";
  screenCtx.fillRect(0, 0, screen.width, screen.height);
  overlay(loadingText());
}

function loadingText() {
  const seconds = (performance.now() - play.loading.since) / 1000;
  return `loading world '${play.loading.world}'… ${seconds.toFixed(0)} s (compiling its step; no frames until it is ready)`;
}

function showWorld(world, start) {
  play.world = world;
  play.loading = null;
  play.firstGenerated = null;
  play.bindings = new Map(world.keys.map((k) => [k.press || k.key, k.key]));
  resetLatency();
  offscreen.width = world.width;
  offscreen.height = world.height;
  screen.width = DISPLAY_WIDTH;
  screen.height = Math.round((DISPLAY_WIDTH * world.height) / world.width);
  $("world-name").textContent = world.name;
  $("world-description").textContent = `${world.description} (${world.width}×${world.height}, ${world.fps} frames/s, ${world.sampler.steps} denoising steps)`;
  $("keys").replaceChildren(...world.keys.map(({ key, meaning, press }) => {
    const item = document.createElement("li");
    item.dataset.key = key;
    const kbd = document.createElement("kbd");
    kbd.textContent = press || key;
    item.append(kbd, meaning || "");
    if (press && press !== key) item.title = `the model's '${key}'; press ${press}`;
    return item;
  }));
  const moved = world.keys.filter((k) => k.press && k.press !== k.key);
  $("key-note").textContent = moved.length
    ? `${moved.map((k) => `${k.key} is on ${k.press}`).join(", ")}: the browser keeps Ctrl/Alt combinations (Ctrl+W closes the tab).`
    : "";
  if ($("world").value !== world.id) $("world").value = world.id;
  overlay(play.paused ? "paused" : "");
  log(`${world.name}: started from ${start === "upload" ? "your image" : "its default image"}`);
  screen.focus();
}

function onFrame(buffer) {
  const view = new DataView(buffer);
  const headerLength = view.getUint32(0);
  const header = JSON.parse(decoder.decode(new Uint8Array(buffer, 4, headerLength)));
  if (play.loading) { send({ type: "ack", id: header.id }); return; } // the old world's last frames: not shown
  const rgb = new Uint8Array(buffer, 4 + headerLength);
  const { width, height } = header;
  const image = offCtx.createImageData(width, height);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    image.data[j] = rgb[i]; image.data[j + 1] = rgb[i + 1]; image.data[j + 2] = rgb[i + 2]; image.data[j + 3] = 255;
  }
  offCtx.putImageData(image, 0, 0);
  if (header.n > 0 && !play.firstGenerated) play.firstGenerated = image;
  screenCtx.imageSmoothingEnabled = true;
  screenCtx.imageSmoothingQuality = "high";
  screenCtx.drawImage(offscreen, 0, 0, screen.width, screen.height);
  send({ type: "ack", id: header.id }); // flow control: the server sends at most 2 frames ahead
  const now = performance.now();
  play.frames += 1;
  play.lastHeader = header;
  if (header.n > 0) {
    play.frameTimes.push(now);
    while (play.frameTimes.length && play.frameTimes[0] < now - 1000) play.frameTimes.shift();
  }
  // Input-to-frame latency: from a key change to the first frame generated with it.
  if (play.inputTimes.has(header.seq)) {
    play.latency = now - play.inputTimes.get(header.seq);
    for (const seq of [...play.inputTimes.keys()]) if (seq <= header.seq) play.inputTimes.delete(seq);
  }
  if (!play.recorder) startRecording();
}

// Stats redraw four times a second, not per frame.
setInterval(() => {
  const times = play.frameTimes;
  const now = performance.now();
  while (times.length && times[0] < now - 1000) times.shift();
  play.fps = times.length;
  $("fps").textContent = play.loading ? "loading" : play.paused ? "paused" : play.fps.toFixed(0);
  if (play.loading) overlay(loadingText());
  $("latency").textContent = play.latency === null ? "press a key" : `${play.latency.toFixed(0)} ms`;
  const h = play.lastHeader;
  if (h) {
    $("step").textContent = `${h.step_ms.toFixed(1)} ms`;
    $("frame").textContent = String(h.n);
    $("dropped").textContent = String(h.dropped);
  }
}, 250);

// --- controls ----------------------------------------------------------------------------------
async function loadWorlds() {
  const answer = await (await fetch("/api/worlds")).json();
  if (answer.max_upload) play.maxUpload = answer.max_upload;
  const select = $("world");
  select.replaceChildren(...answer.worlds.map((w) => new Option(w.name, w.id, w.id === answer.default, w.id === answer.default)));
  if (!answer.worlds.length) overlay("No world is available. Start the server with --checkpoint DIR.");
}

$("world").addEventListener("change", (e) => {
  send({ type: "world", name: e.target.value });
  showLoading(e.target.value);
  screen.focus();
});
setInterval(() => send({ type: "alive" }), ALIVE_MS);
$("reset").addEventListener("click", () => { send({ type: "reset" }); screen.focus(); });
$("pause").addEventListener("click", () => {
  play.paused = !play.paused;
  send({ type: "pause", paused: play.paused });
  $("pause").textContent = play.paused ? "Resume" : "Pause";
  $("pause").classList.toggle("on", play.paused);
  overlay(play.paused ? "paused" : "");
  screen.focus();
});
$("upload").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  e.target.value = ""; // choosing the same file again should upload again
  if (!file) return;
  if (file.size > play.maxUpload) {
    log(`${file.name} is ${(file.size / 1e6).toFixed(1)} MB; the limit is ${(play.maxUpload / 1e6).toFixed(0)} MB`, true);
    return;
  }
  log(`uploading ${file.name}…`);
  if (play.ws && play.ws.readyState === WebSocket.OPEN) play.ws.send(await file.arrayBuffer());
  screen.focus();
});

// --- recording: the canvas as WebM, in the browser ---------------------------------------------
function startRecording() {
  if (!window.MediaRecorder || !screen.captureStream) {
    $("download").disabled = true;
    $("download").title = "This browser cannot record a canvas (no MediaRecorder)";
    play.recorder = "unsupported";
    return;
  }
  const type = ["video/webm;codecs=vp9", "video/webm;codecs=vp8", "video/webm"].find((t) => MediaRecorder.isTypeSupported(t));
  play.recorder = new MediaRecorder(screen.captureStream(30), type ? { mimeType: type } : undefined);
  play.recorder.ondataavailable = (e) => { if (e.data.size) { play.chunks.push(e.data); play.recordedBytes += e.data.size; } };
  play.recorder.start(1000); // a chunk a second, so a download never waits for the whole session
}

$("download").addEventListener("click", () => {
  const recorder = play.recorder;
  if (!recorder || recorder === "unsupported") return;
  const save = () => {
    const blob = new Blob(play.chunks, { type: "video/webm" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `wm-${(play.world && play.world.id) || "session"}-${new Date().toISOString().replace(/[:.]/g, "-")}.webm`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    log(`video saved (${(blob.size / 1e6).toFixed(2)} MB)`);
  };
  recorder.addEventListener("dataavailable", save, { once: true });
  recorder.requestData(); // flush what was recorded since the last chunk, then save
});

window.wmPlay = {
  stats: () => ({
    frames: play.frames, fps: play.fps, latency: play.latency, paused: play.paused, errors: [...play.errors],
    world: play.world && play.world.id, header: play.lastHeader, held: [...play.held], recordedBytes: play.recordedBytes,
    loading: play.loading && play.loading.world, bindings: Object.fromEntries(play.bindings),
  }),
  pixels: () => Array.from(offCtx.getImageData(0, 0, offscreen.width, offscreen.height).data),
  // The first generated frame since the world last (re)started, as pixels() (null until it came).
  firstPixels: () => play.firstGenerated && Array.from(play.firstGenerated.data),
};

loadWorlds().then(connect, (error) => overlay(`Cannot reach the server: ${error}`));

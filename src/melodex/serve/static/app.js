// melodex web page: search as you type (with filters), play, more like this, describe a clip
// (against a text set the library holds), the library map.
// Plain JavaScript, no build step and nothing from other hosts. Track ids are 63-bit, so the
// page only ever uses the API's `id_str` (a JavaScript number would round them).
"use strict";

const token = new URLSearchParams(location.search).get("token");
const $ = (id) => document.getElementById(id);
const state = { playing: null, map: null, mapVersion: -1, selected: -1, searchSeq: 0, marks: new Set() };

// ---------------------------------------------------------------------------- the API
class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (token) headers.set("Authorization", `Bearer ${token}`);
  const response = await fetch(path, { ...options, headers });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const err = body && body.error ? body.error : { code: "http_" + response.status, message: response.statusText };
    throw new ApiError(response.status, err.code, err.message);
  }
  return body;
}

function audioUrl(idStr) {
  const url = `/api/tracks/${encodeURIComponent(idStr)}/audio`;
  return token ? `${url}?token=${encodeURIComponent(token)}` : url;
}

function setStatus(el, text, isError = false) {
  el.textContent = text;
  el.classList.toggle("error", isError);
}

const fmtTime = (s) => (s == null ? "" : `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`);
const trackName = (h) => h.title || h.path || `track ${h.id_str}`;

// ---------------------------------------------------------------------------- results
function renderHits(list, hits) {
  list.replaceChildren();
  for (const hit of hits) {
    const li = document.createElement("li");
    li.className = "hit";
    li.dataset.id = hit.id_str;
    if (state.playing === hit.id_str) li.classList.add("playing");

    const info = document.createElement("div");
    info.className = "info";
    const title = document.createElement("div");
    title.className = "title";
    title.textContent = trackName(hit);
    const sub = document.createElement("div");
    sub.className = "sub";
    const at = hit.segment_start ? `best at ${fmtTime(hit.segment_start)}` : "";
    const tempo = hit.bpm ? `${Math.round(hit.bpm)} BPM` : "";
    const key = hit.key ? [hit.key, hit.mode].filter(Boolean).join(" ") : "";
    sub.textContent = [hit.artist, hit.album, fmtTime(hit.duration), tempo, key,
      hit.score == null ? "" : `score ${hit.score.toFixed(3)}`, at]
      .filter(Boolean).join(" · ");
    info.append(title, sub);

    const actions = document.createElement("div");
    actions.className = "actions";
    const play = document.createElement("button");
    play.type = "button";
    play.className = "play";
    play.textContent = "Play";
    play.setAttribute("aria-label", `Play ${trackName(hit)}`);
    play.addEventListener("click", () => playTrack(hit));
    const more = document.createElement("button");
    more.type = "button";
    more.className = "similar secondary";
    more.textContent = "More like this";
    more.setAttribute("aria-label", `More like ${trackName(hit)}`);
    more.addEventListener("click", () => moreLike(hit));
    actions.append(play, more);

    li.append(info, actions);
    list.append(li);
  }
}

function markPlaying() {
  for (const li of document.querySelectorAll(".hit")) {
    li.classList.toggle("playing", li.dataset.id === state.playing);
  }
}

async function playTrack(hit) {
  const player = $("player");
  state.playing = hit.id_str;
  // a media fragment starts the track at its best-matching moment
  const start = hit.segment_start || hit.start;
  player.src = audioUrl(hit.id_str) + (start ? `#t=${start}` : "");
  $("now-playing").textContent = [trackName(hit), hit.artist].filter(Boolean).join(" — ");
  markPlaying();
  drawMap();
  try {
    await player.play();
  } catch (err) {
    if (err.name !== "AbortError") setStatus($("status"), `Cannot play: ${err.message}`, true);
  }
}

// ---------------------------------------------------------------------------- search
let debounceTimer = null;

// The tempo inputs as the API's range ("60-90"; one bound open: 1-400), "" when both are empty.
function bpmRange() {
  const lo = $("f-bpm-min").value.trim(), hi = $("f-bpm-max").value.trim();
  if (!lo && !hi) return "";
  return `${lo || "1"}-${hi || "400"}`;
}

// The filters panel as query parameters ("&artist=...&exclude=a&exclude=b"), "" when empty.
// Searches and playlists take them all: metadata, tempo, key and exclusions.
function filterParams() {
  const params = new URLSearchParams();
  for (const name of ["artist", "album", "genre", "year", "folder", "duration"]) {
    const value = $(`f-${name}`).value.trim();
    if (value) params.set(name, value);
  }
  if (bpmRange()) params.set("bpm", bpmRange());
  if ($("f-key").value) params.set("key", $("f-key").value);
  for (const x of $("f-exclude").value.split(",")) if (x.trim()) params.append("exclude", x.trim());
  const text = params.toString();
  return text ? `&${text}` : "";
}

async function runSearch(text) {
  const seq = ++state.searchSeq;
  const q = text.trim();
  if (!q) {
    $("results").replaceChildren();
    setStatus($("status"), "");
    state.marks = new Set();
    drawMap();
    return;
  }
  setStatus($("status"), "Searching…");
  try {
    const hits = await api(`/api/search?q=${encodeURIComponent(q)}&k=10${filterParams()}`);
    if (seq !== state.searchSeq) return; // a newer search has started
    renderHits($("results"), hits);
    state.marks = new Set(hits.map((h) => h.id_str));
    drawMap();
    setStatus($("status"), hits.length
      ? `${hits.length} result${hits.length === 1 ? "" : "s"} for “${q}”.`
      : "No tracks in the library yet.");
  } catch (err) {
    if (seq === state.searchSeq) setStatus($("status"), `Search failed: ${err.message}`, true);
  }
}

async function moreLike(hit) {
  const seq = ++state.searchSeq;
  setStatus($("status"), `Finding tracks like ${trackName(hit)}…`);
  try {
    const hits = await api(`/api/similar/${encodeURIComponent(hit.id_str)}?k=10`);
    if (seq !== state.searchSeq) return;
    renderHits($("results"), hits);
    state.marks = new Set(hits.map((h) => h.id_str));
    drawMap();
    setStatus($("status"), `${hits.length} tracks like “${trackName(hit)}”.`);
    const first = $("results").querySelector("button");
    if (first) first.focus();
  } catch (err) {
    if (seq === state.searchSeq) setStatus($("status"), `More like this failed: ${err.message}`, true);
  }
}

// ---------------------------------------------------------------------------- describe
const textSets = { list: [], lastFile: null, seq: 0 };

// The text sets the library holds, in the "Rank texts from" menu (the choice is kept).
async function loadTextSets() {
  let found;
  try {
    found = await api("/api/text-sets");
  } catch (err) {
    return; // the menu keeps what it has
  }
  const same = JSON.stringify(found) === JSON.stringify(textSets.list);
  textSets.list = found;
  if (same && $("text-set").options.length === found.length + 1) return; // an open menu stays open
  const select = $("text-set");
  const chosen = select.value;
  const options = [new Option("Built-in phrases only", "")];
  for (const set of textSets.list) {
    options.push(new Option(`${set.name} (${set.texts} texts)`, set.id));
  }
  select.replaceChildren(...options);
  select.value = textSets.list.some((t) => t.id === chosen) ? chosen : "";
  fillKinds();
}

function chosenSet() {
  return textSets.list.find((t) => t.id === $("text-set").value) || null;
}

function fillKinds() {
  const select = $("text-kind");
  const chosen = select.value;
  const set = chosenSet();
  const kinds = set ? set.kinds : [];
  select.replaceChildren(new Option("Any kind", ""), ...kinds.map((k) => new Option(k, k)));
  select.value = kinds.includes(chosen) ? chosen : "";
  select.disabled = !set;
}

async function describeFile(file) {
  const status = $("describe-status");
  if (!file) return;
  const seq = ++textSets.seq;
  textSets.lastFile = file;
  setStatus(status, `Describing ${file.name}…`);
  $("describe-out").hidden = true;
  const form = new FormData();
  form.append("file", file, file.name);
  const set = chosenSet();
  let url = "/api/describe?k=8";
  if (set) url += `&texts=${encodeURIComponent(set.id)}`;
  if (set && $("text-kind").value) url += `&kind=${encodeURIComponent($("text-kind").value)}`;
  try {
    const desc = await api(url, { method: "POST", body: form });
    if (seq !== textSets.seq) return; // a newer upload or choice has started
    fillScores($("tags"), desc.tags);
    fillScores($("texts"), desc.texts);
    fillMatches(desc.matches, set);
    renderHits($("describe-hits"), desc.similar);
    $("describe-out").hidden = false;
    setStatus(status, `${desc.path}: ${desc.tags.slice(0, 3).map((t) => t.text).join(", ")}.`);
  } catch (err) {
    if (seq === textSets.seq) setStatus(status, `Could not describe ${file.name}: ${err.message}`, true);
  }
}

// The chosen text set's nearest texts, best first, each with where it came from.
function fillMatches(matches, set) {
  const list = $("matches");
  list.replaceChildren();
  $("matches-out").hidden = !matches;
  if (!matches) return;
  $("matches-heading").textContent = `Closest texts in ${set ? set.name : "the text set"}`;
  for (const m of matches) {
    const li = document.createElement("li");
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = m.text;
    const source = document.createElement("span");
    source.className = "source";
    source.textContent = `${m.kind} · from ${m.item}`;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = `score ${m.score.toFixed(3)}`;
    li.append(text, source, score);
    list.append(li);
  }
}

function fillScores(list, items) {
  list.replaceChildren();
  const top = Math.max(1e-9, ...items.map((t) => t.score));
  for (const item of items) {
    const li = document.createElement("li");
    li.style.setProperty("--w", `${Math.round(100 * Math.max(0, item.score) / top)}%`);
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = ` ${item.score.toFixed(2)}`;
    li.append(document.createTextNode(item.text), score);
    list.append(li);
  }
}

function setupDrop() {
  const drop = $("drop");
  const input = $("file");
  const again = () => { if (textSets.lastFile) describeFile(textSets.lastFile); };
  $("text-set").addEventListener("change", () => { fillKinds(); again(); });
  $("text-kind").addEventListener("change", again);
  input.addEventListener("change", () => describeFile(input.files[0]));
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    const file = e.dataTransfer && e.dataTransfer.files[0];
    describeFile(file);
  });
}

// ---------------------------------------------------------------------------- the map
const PAD = 14;

function mapXY(canvas, p) {
  const w = canvas.clientWidth, h = canvas.clientHeight;
  return [PAD + p.x * (w - 2 * PAD), PAD + (1 - p.y) * (h - 2 * PAD)];
}

function drawMap() {
  const canvas = $("map");
  const points = state.map ? state.map.points : [];
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const r = points.length > 2000 ? 1.5 : 3.5;
  ctx.fillStyle = "rgba(60, 60, 70, 0.45)";
  for (const p of points) {
    const [x, y] = mapXY(canvas, p);
    ctx.beginPath();
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.fill();
  }
  const highlight = (p, color, radius) => {
    const [x, y] = mapXY(canvas, p);
    ctx.beginPath();
    ctx.arc(x, y, radius, 0, 2 * Math.PI);
    ctx.fillStyle = color;
    ctx.fill();
  };
  for (const p of points) if (state.marks.has(p.id_str)) highlight(p, "#2f5bd3", r + 2);
  for (const p of points) if (p.id_str === state.playing) highlight(p, "#e4572e", r + 4);
  const sel = points[state.selected];
  if (sel) {
    const [x, y] = mapXY(canvas, sel);
    ctx.strokeStyle = "#ff9f1c";
    ctx.lineWidth = 3;
    ctx.beginPath();
    ctx.arc(x, y, r + 7, 0, 2 * Math.PI);
    ctx.stroke();
  }
  if (!points.length) {
    ctx.fillStyle = "#5b5b63";
    ctx.font = "14px system-ui, sans-serif";
    ctx.fillText("No tracks yet.", PAD, PAD + 14);
  }
}

function nearestPoint(x, y, maxDist = 16) {
  const canvas = $("map");
  let best = -1, bestD = maxDist * maxDist;
  (state.map ? state.map.points : []).forEach((p, i) => {
    const [px, py] = mapXY(canvas, p);
    const d = (px - x) ** 2 + (py - y) ** 2;
    if (d <= bestD) { best = i; bestD = d; }
  });
  return best;
}

function describePoint(i) {
  const p = state.map.points[i];
  $("map-info").textContent = p ? [p.title || `track ${p.id_str}`, p.artist].filter(Boolean).join(" — ") : "";
}

function playPoint(i) {
  const p = state.map && state.map.points[i];
  if (!p) return;
  state.selected = i;
  describePoint(i);
  playTrack({ id_str: p.id_str, title: p.title, artist: p.artist, path: "" });
}

// Arrow keys jump to the nearest point in that direction (a cone of +-60 degrees).
function stepSelection(dx, dy) {
  const points = state.map ? state.map.points : [];
  if (!points.length) return;
  if (state.selected < 0 || state.selected >= points.length) { state.selected = 0; return; }
  const cur = points[state.selected];
  let best = -1, bestScore = Infinity;
  points.forEach((p, i) => {
    if (i === state.selected) return;
    const vx = p.x - cur.x, vy = p.y - cur.y;
    const along = vx * dx + vy * dy;
    if (along <= 0) return;
    const across = Math.abs(vx * dy - vy * dx);
    if (across > along * 1.8) return;
    const score = along + 2 * across;
    if (score < bestScore) { bestScore = score; best = i; }
  });
  if (best >= 0) state.selected = best;
}

function setupMap() {
  const canvas = $("map");
  canvas.addEventListener("click", (e) => {
    const rect = canvas.getBoundingClientRect();
    const i = nearestPoint(e.clientX - rect.left, e.clientY - rect.top);
    if (i >= 0) playPoint(i);
  });
  canvas.addEventListener("mousemove", (e) => {
    const rect = canvas.getBoundingClientRect();
    const i = nearestPoint(e.clientX - rect.left, e.clientY - rect.top);
    canvas.style.cursor = i >= 0 ? "pointer" : "default";
    if (i >= 0) { canvas.title = state.map.points[i].title || ""; }
  });
  canvas.addEventListener("keydown", (e) => {
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
    if (moves[e.key]) {
      e.preventDefault();
      stepSelection(...moves[e.key]);
      describePoint(state.selected);
      drawMap();
    } else if ((e.key === "Enter" || e.key === " ") && state.selected >= 0) {
      e.preventDefault();
      playPoint(state.selected);
    }
  });
  canvas.addEventListener("focus", () => {
    if (state.selected < 0 && state.map && state.map.points.length) state.selected = 0;
    if (state.selected >= 0) describePoint(state.selected);
    drawMap();
  });
  window.addEventListener("resize", drawMap);
}

async function loadMap() {
  try {
    state.map = await api("/api/map");
    state.mapVersion = state.map.store_version;
    if (state.selected >= state.map.points.length) state.selected = -1;
    $("map").setAttribute("aria-label", `Map of the library: ${state.map.points.length} tracks`);
    drawMap();
  } catch (err) {
    $("map-info").textContent = `Map unavailable: ${err.message}`;
  }
}

// ---------------------------------------------------------------------------- library info
async function refreshInfo() {
  try {
    const h = await api("/api/health");
    $("library-info").textContent =
      `${h.tracks} track${h.tracks === 1 ? "" : "s"} · model ${h.model.name} · ${h.index || "no"} index`;
    if (h.store_version !== state.mapVersion) await loadMap(); // new tracks: redraw the map
    await loadTextSets(); // a set added by `melodex describe --texts` appears
  } catch (err) {
    $("library-info").textContent = err.status === 401
      ? "This server needs a token: open the page as /?token=YOUR_TOKEN."
      : `Library unavailable: ${err.message}`;
  }
}

// ---------------------------------------------------------------------------- start
function start() {
  const q = $("q");
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    clearTimeout(debounceTimer);
    runSearch(q.value);
  });
  q.addEventListener("input", () => {
    clearTimeout(debounceTimer);
    debounceTimer = setTimeout(() => runSearch(q.value), 250);
  });
  $("filters").addEventListener("input", () => {
    clearTimeout(debounceTimer);
    debounceTimer = setTimeout(() => runSearch(q.value), 400);
  });
  $("player").addEventListener("error", () => {
    if ($("player").getAttribute("src")) setStatus($("status"), "This track cannot be played.", true);
  });
  $("player").addEventListener("ended", () => { if (window.playNext) window.playNext(); });
  setupDrop();
  setupMap();
  refreshInfo();
  setInterval(() => { if (document.visibilityState === "visible") refreshInfo(); }, 15000);
}

document.addEventListener("DOMContentLoaded", start);

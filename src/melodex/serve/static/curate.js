// melodex web page: playlists and paths (make, play in order, download M3U), duplicates.
// Uses app.js's api(), renderHits(), playTrack() and setStatus().
"use strict";

const queue = { items: [], next: 0, playlist: [], path: [] };

function playlistQuery() {
  const q = $("pl-q").value.trim();
  const length = $("pl-length").value.trim() || "45m";
  return `q=${encodeURIComponent(q)}&length=${encodeURIComponent(length)}${filterParams()}`;
}

async function makePlaylist() {
  const status = $("pl-status");
  if (!$("pl-q").value.trim()) { setStatus(status, "Type a description or a name first.", true); return; }
  setStatus(status, "Making the playlist…");
  try {
    const entries = await api(`/api/playlist?${playlistQuery()}`);
    const hits = entries.map((e) => ({ ...e, segment_start: e.start }));
    renderHits($("playlist"), hits);
    queue.playlist = hits;
    const total = hits.reduce((sum, h) => sum + h.duration, 0);
    const link = `/api/playlist.m3u?${playlistQuery()}`;
    $("pl-download").href = token ? `${link}&token=${encodeURIComponent(token)}` : link;
    $("pl-actions").hidden = hits.length === 0;
    setStatus(status, `${hits.length} tracks, ${fmtTime(total)}.`);
  } catch (err) {
    setStatus(status, `Playlist failed: ${err.message}`, true);
  }
}

// Called by app.js when a track ends: the playlist or path goes on in order.
window.playNext = () => {
  if (queue.next < queue.items.length) playTrack(queue.items[queue.next++]);
};

function playQueue(items) {
  queue.items = items;
  queue.next = 0;
  window.playNext();
}

async function topHit(text) {
  const hits = await api(`/api/search?q=${encodeURIComponent(text)}&k=1`);
  if (!hits.length) throw new Error(`nothing matches “${text}”`);
  return hits[0];
}

async function findPath() {
  const status = $("path-status");
  const from = $("path-from").value.trim(), to = $("path-to").value.trim();
  if (!from || !to) { setStatus(status, "Name where the path starts and ends.", true); return; }
  setStatus(status, "Finding the path…");
  try {
    const [a, b] = [await topHit(from), await topHit(to)];
    const steps = Math.max(0, Math.min(50, parseInt($("path-steps").value, 10) || 0));
    const entries = await api(
      `/api/path?from=${encodeURIComponent(a.id_str)}&to=${encodeURIComponent(b.id_str)}&steps=${steps}`);
    const hits = entries.map((e) => ({ ...e, segment_start: null }));
    renderHits($("path-list"), hits);
    queue.path = hits;
    const link = `/api/path.m3u?from=${encodeURIComponent(a.id_str)}&to=${encodeURIComponent(b.id_str)}&steps=${steps}`;
    $("path-download").href = token ? `${link}&token=${encodeURIComponent(token)}` : link;
    $("path-actions").hidden = hits.length === 0;
    setStatus(status, `${hits.length} tracks from “${trackName(a)}” to “${trackName(b)}”.`);
  } catch (err) {
    queue.path = [];
    $("path-actions").hidden = true;
    setStatus(status, `Path failed: ${err.message}`, true);
  }
}

async function findDuplicates() {
  const status = $("dups-status");
  setStatus(status, "Looking for duplicates…");
  try {
    const groups = await api("/api/duplicates");
    const list = $("dups");
    list.replaceChildren();
    for (const g of groups) {
      const li = document.createElement("li");
      const names = g.tracks.map((t) => `${t.title || t.path} (${t.path}, ${fmtTime(t.duration)})`);
      const ev = g.evidence.map((e) => `windows ${e.window_match.toFixed(3)}`).join(", ");
      li.textContent = `${names.join(" = ")} — ${ev}`;
      list.append(li);
    }
    setStatus(status, groups.length
      ? `${groups.length} group${groups.length === 1 ? "" : "s"} of copies.`
      : "No duplicates found.");
  } catch (err) {
    setStatus(status, `Duplicates failed: ${err.message}`, true);
  }
}

function startCurate() {
  $("playlist-form").addEventListener("submit", (e) => { e.preventDefault(); makePlaylist(); });
  $("pl-play").addEventListener("click", () => playQueue(queue.playlist));
  $("path-form").addEventListener("submit", (e) => { e.preventDefault(); findPath(); });
  $("path-play").addEventListener("click", () => playQueue(queue.path));
  $("dups-find").addEventListener("click", findDuplicates);
}

document.addEventListener("DOMContentLoaded", startCurate);

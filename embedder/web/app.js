// The embedder page: plain JavaScript over the JSON API, no build step and nothing from a CDN.
"use strict";

const $ = (id) => document.getElementById(id);
const results = $("results");
const statusLine = $("status");
const MODALITIES = ["visual", "audio", "text"];

function say(message, isError = false) {
  statusLine.textContent = message;
  statusLine.className = isError ? "error" : "";
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  if (response.status === 401) {
    $("key-box").hidden = false;
    throw new Error("this server needs an API key");
  }
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function baseName(path, id) {
  return path ? path.split("/").pop() : id;
}

// A hit's name: its file, else its catalogue key and title ('embedder items import'), else its id.
function label(hit) {
  if (hit.path) return baseName(hit.path, hit.id);
  if (hit.item) return hit.title ? `${hit.item}: ${hit.title}` : hit.item;
  return hit.id;
}

// Bars are relative to the largest |cosine| on the page (raw cosines of unrelated models sit close
// together); the number beside each bar is the cosine itself, and a negative one is drawn faded.
let barScale = 1;

function scoreBars(scores) {
  const box = document.createElement("div");
  for (const m of MODALITIES) {
    if (!(m in scores)) continue;
    const value = scores[m];
    const row = document.createElement("div");
    row.className = "bar";
    row.innerHTML = `<span>${m}</span><span class="track"><span class="fill ${m}"></span></span><span>${value.toFixed(3)}</span>`;
    const fill = row.querySelector(".fill");
    fill.style.width = `${Math.min(1, Math.abs(value) / barScale) * 100}%`;
    if (value < 0) fill.classList.add("negative");
    row.title = `cosine between the query and the item's ${m} vector`;
    box.appendChild(row);
  }
  return box;
}

function clock(seconds) {
  const m = Math.floor(seconds / 60);
  const s = (seconds - 60 * m).toFixed(1).padStart(4, "0");
  return `${m}:${s}`;
}

// One line saying why the hit is here: the best moment and its subtitle, the user's taste, or
// the recommendation's reason (all computed by the server from stored vectors).
function explanation(hit) {
  const lines = [];
  if (hit.moment) {
    const said = hit.moment.subtitle ? ` “${hit.moment.subtitle}”` : "";
    lines.push(["moment", `▶ ${clock(hit.moment.start)}–${clock(hit.moment.end)}${said}`]);
  }
  if (hit.personal) {
    const liked = hit.personal.nearest_liked;
    const near = liked ? `, close to ${baseName(liked.path, liked.id)} you liked` : "";
    const seen = hit.personal.seen ? ", seen" : "";
    const taste = hit.personal.taste === null ? "no taste signal" : `taste ${hit.personal.taste_z >= 0 ? "+" : ""}${hit.personal.taste_z.toFixed(1)}σ`;
    lines.push(["personal", `for you ${hit.personal.score.toFixed(3)} (${taste}${near}${seen})`]);
  }
  if (hit.reason) lines.push(["reason", hit.reason]);
  const out = lines.map(([kind, text]) => {
    const line = document.createElement("div");
    line.className = `why ${kind}`;
    line.textContent = text;
    return line;
  });
  const said = (hit.matches || [])[0];
  if (said) out.unshift(matchedLine(said));
  return out;
}

// Where the query's words matched: the line (title, text, subtitle or transcript), its time, and
// the matched words marked. Built from text nodes: the line is the item's words, never markup.
function matchedLine(match) {
  const line = document.createElement("div");
  line.className = "why said";
  const when = match.start === null || match.start === undefined ? "" : ` ${clock(match.start)}`;
  const where = document.createElement("span");
  where.className = "where";
  where.textContent = `${match.where}${when}: `;
  line.appendChild(where);
  const wanted = new Set(match.words.map((w) => w.toLowerCase()));
  for (const piece of match.text.slice(0, 200).split(/([\p{L}\p{N}_]+(?:['’][\p{L}\p{N}_]+)*)/u)) {
    if (wanted.has(piece.toLowerCase())) {
      const mark = document.createElement("mark");
      mark.textContent = piece;
      line.appendChild(mark);
    } else if (piece) {
      line.appendChild(document.createTextNode(piece));
    }
  }
  line.title = "where the search words matched; click the card to play from here";
  return line;
}

// Where playing starts: the line the words matched, else the best moment, else the beginning.
function startAt(hit) {
  const timed = (hit.matches || []).find((m) => m.start !== null && m.start !== undefined);
  if (timed) return timed.start;
  return hit.moment ? hit.moment.start : 0;
}

function scoreText(hit) {
  const fused = hit.sides && hit.sides.fused;
  if (fused) return `${hit.kind || "item"} · score ${hit.score.toFixed(4)} = meaning ${fused.dense.toFixed(4)} + words ${fused.lexical.toFixed(4)}`;
  if (hit.mode === "lexical") return `${hit.kind || "item"} · words (BM25) ${hit.score.toFixed(3)}`;
  return `${hit.kind || "item"} · score ${hit.score.toFixed(3)}`;
}

function card(hit) {
  const el = document.createElement("article");
  el.className = "card";
  el.dataset.id = hit.id;
  const img = document.createElement("img");
  img.className = "thumb";
  img.alt = `thumbnail of ${label(hit)}`;
  img.loading = "lazy";
  img.onload = () => { img.dataset.loaded = "1"; };
  img.onerror = () => { img.dataset.loaded = "0"; img.removeAttribute("src"); };
  img.src = (hit.moment && hit.moment.thumbnail) || `/items/${encodeURIComponent(hit.id)}/thumbnail`;
  el.appendChild(img);
  const meta = document.createElement("div");
  meta.className = "meta";
  const name = document.createElement("div");
  name.className = "name";
  name.textContent = label(hit);
  name.title = hit.path || hit.id;
  const score = document.createElement("div");
  score.className = "score";
  score.textContent = scoreText(hit);
  meta.append(name, score);
  if (hit.scores) meta.appendChild(scoreBars(hit.scores));
  meta.append(...explanation(hit));
  for (const branch of hit.branches || []) {
    const tag = document.createElement("span");
    tag.className = "branch";
    tag.textContent = branch;
    tag.title = `found by the ${branch} branch`;
    meta.appendChild(tag);
  }
  el.appendChild(meta);
  el.onclick = () => play(hit);
  return el;
}

function show(hits, what) {
  const all = hits.flatMap((h) => Object.values(h.scores || {}).map(Math.abs));
  barScale = Math.max(1e-6, ...all);
  results.replaceChildren(...hits.map(card));
  say(hits.length ? `${hits.length} results ${what}` : `no results ${what}`);
}

function play(hit) {
  const kind = hit.kind === "audio" ? "audio" : "video";
  const player = document.createElement(kind);
  player.controls = true;
  player.autoplay = true;
  player.src = `/items/${encodeURIComponent(hit.id)}/media`;
  const from = startAt(hit);
  if (from > 0) player.addEventListener("loadedmetadata", () => { player.currentTime = from; }, { once: true });
  $("player-body").replaceChildren(player);
  $("player").showModal();
}

async function search(text) {
  // Near-duplicates (marked by 'embedder duplicates --mark') show once on the page.
  const params = new URLSearchParams({ q: text, limit: "24", modality: $("modality").value, mode: $("mode").value, collapse_duplicates: "true" });
  if ($("moments").checked) params.set("moments", "true");
  if ($("user").value) params.set("user", $("user").value);
  say("searching…");
  try {
    const found = await api(`/search?${params}`);
    const who = $("user").value ? `, for ${$("user").value}` : "";
    const how = found.mode ? `, ${found.mode}${found.fusion ? " (" + found.fusion + ")" : ""}` : "";
    show(found.hits, `for “${text}”${found.moments ? " (moments)" : ""}${how}${who}`);
  } catch (e) { say(e.message, true); }
}

async function moreLike(file) {
  const form = new FormData();
  form.append("file", file);
  say(`decoding ${file.name}…`);
  try {
    const found = await api(`/search/file?limit=24${$("moments").checked ? "&moments=true" : ""}`, { method: "POST", body: form });
    show(found.hits, `like ${file.name}`);
  } catch (e) { say(e.message, true); }
}

async function recommend(user) {
  if (!user) return;
  const params = new URLSearchParams({ strategy: $("strategy").value, limit: "24", collapse_duplicates: "true" });
  say(`recommending for ${user}…`);
  try {
    const recs = await api(`/users/${encodeURIComponent(user)}/recommendations?${params}`);
    show(recs.items, `for ${user} (${recs.used.join(" + ")})${recs.note ? ": " + recs.note : ""}`);
  } catch (e) { say(e.message, true); }
}

async function loadUsers(selected) {
  try {
    const { users } = await api("/users?limit=200");
    for (const u of users) {
      const option = new Option(`${u.user} (${u.events})`, u.user);
      $("user").add(option);
    }
    if (selected && !users.some((u) => u.user === selected)) $("user").add(new Option(selected, selected));
    if (selected) $("user").value = selected;
  } catch (e) { say(e.message, true); }
}

$("search-form").onsubmit = (event) => {
  event.preventDefault();
  const text = $("q").value.trim();
  if (text) {
    const state = new URLSearchParams({ q: text });
    if ($("moments").checked) state.set("moments", "1");
    if ($("mode").value !== "auto") state.set("mode", $("mode").value);
    if ($("user").value) state.set("user", $("user").value);
    history.replaceState(null, "", `?${state}`);
    search(text);
  }
};
$("user").onchange = () => recommend($("user").value);
$("strategy").onchange = () => recommend($("user").value);
const drop = $("drop");
drop.onclick = () => $("file").click();
$("file").onchange = () => { if ($("file").files[0]) moreLike($("file").files[0]); };
drop.ondragover = (event) => { event.preventDefault(); drop.classList.add("over"); };
drop.ondragleave = () => drop.classList.remove("over");
drop.ondrop = (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  if (event.dataTransfer.files[0]) moreLike(event.dataTransfer.files[0]);
};
$("close").onclick = () => { $("player-body").replaceChildren(); $("player").close(); };
$("key-save").onclick = () => {
  document.cookie = `embedder_api_key=${encodeURIComponent($("key").value)}; path=/; SameSite=Strict`;
  location.reload();
};

const start = new URLSearchParams(location.search);
$("moments").checked = start.get("moments") === "1";
if (["hybrid", "dense", "lexical"].includes(start.get("mode"))) $("mode").value = start.get("mode");
if (start.get("q") && start.get("user")) {
  $("q").value = start.get("q");
  loadUsers(start.get("user")).then(() => search(start.get("q")));
} else if (start.get("q")) {
  loadUsers(null);
  $("q").value = start.get("q");
  search(start.get("q"));
} else {
  loadUsers(start.get("user"));
  if (start.get("user")) recommend(start.get("user"));
}

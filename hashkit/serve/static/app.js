// hashkit search page: talks to the JSON API of `hashkit serve` (same origin), no external resources.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { info: null, last: null };

async function api(url, options) {
  const response = await fetch(url, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = { detail: response.statusText }; }
  if (!response.ok) throw new Error(`${response.status}: ${body.detail || response.statusText}`);
  return body;
}

function status(text, error) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

function figure(src, caption, cls, title) {
  const fig = document.createElement("figure");
  fig.className = cls;
  const img = document.createElement("img");
  img.src = src;
  img.alt = caption;
  if (title) img.title = title;
  const cap = document.createElement("figcaption");
  cap.textContent = caption;
  fig.append(img, cap);
  return fig;
}

function bits() { return Number($("bits").value); }

function params() {
  const p = new URLSearchParams({ bits: bits(), k: $("k").value || "10", attention: "true" });
  if ($("radius").value !== "") p.set("radius", $("radius").value);
  return p;
}

function currentLength() {
  return state.info.code_lengths.find((c) => c.bits === bits());
}

function render(answer, queryLabel, started) {
  const q = answer.queries[0];
  const panel = $("query");
  panel.replaceChildren();
  const maps = q.attention || [];
  if (state.last && state.last.kind === "id") {
    panel.append(figure(`/api/images/${state.last.id}?bits=${answer.bits}`, queryLabel, "query"));
  } else if (maps.length) {
    panel.append(figure(maps[0].image, queryLabel, "query"));
  } else {
    panel.append(figure(state.last.preview, queryLabel, "query"));
  }
  for (const m of maps.slice(1)) panel.append(figure(m.image, m.name, "overlay"));
  $("query-panel").hidden = false;
  const grid = $("results");
  grid.replaceChildren();
  const queryClass = state.last && state.last.label;
  for (const r of q.results) {
    let cls = "result";
    if (queryClass) cls += r.label === queryClass ? " same" : " other";
    const fig = figure(r.image, `d=${r.distance} · ${r.label || r.path}`, cls, r.path);
    fig.dataset.id = r.id;
    fig.dataset.distance = r.distance;
    fig.addEventListener("click", () => searchId(r.id, r.label));
    grid.append(fig);
  }
  $("results-title").hidden = false;
  const ms = Math.round(performance.now() - started);
  const what = answer.radius === null ? `top ${answer.k}` : `radius ${answer.radius}`;
  status(`${answer.bits} bits · ${what} · ${q.results.length} results${q.truncated ? " (truncated)" : ""} · ${ms} ms`);
}

async function searchId(id, label) {
  state.last = { kind: "id", id: Number(id), label: label || null };
  const started = performance.now();
  status("searching…");
  try {
    const answer = await api(`/api/search/id/${id}?${params()}`);
    render(answer, `id ${id}`, started);
  } catch (e) { status(e.message, true); }
}

async function searchFile(file) {
  const preview = URL.createObjectURL(file);
  state.last = { kind: "file", file: file, preview: preview, label: null };
  const form = new FormData();
  form.append("image", file, file.name);
  for (const [key, value] of params()) form.append(key, value);
  const started = performance.now();
  status("encoding and searching…");
  try {
    const answer = await api("/api/search/image", { method: "POST", body: form });
    render(answer, file.name, started);
  } catch (e) { status(e.message, true); }
}

async function loadPicker() {
  const n = currentLength().num_codes;
  const offset = Math.floor(Math.random() * n);
  try {
    const page = await api(`/api/items?bits=${bits()}&offset=${offset}&limit=12`);
    const strip = $("picker");
    strip.replaceChildren();
    for (const item of page.items) {
      const fig = figure(`/api/images/${item.id}?bits=${page.bits}`, item.label || String(item.id), "pick", item.path);
      fig.dataset.id = item.id;
      fig.addEventListener("click", () => searchId(item.id, item.label));
      strip.append(fig);
    }
  } catch (e) { status(e.message, true); }
}

function updateLength() {
  const length = currentLength();
  $("upload").disabled = !length.image_search;
  $("upload-note").textContent = length.image_search ? "" :
    "no model is loaded for this code length: pick a query from the collection";
  $("k").max = state.info.limits.max_k;
  $("radius").max = length.bits;
}

function rerun() {
  updateLength();
  loadPicker();
  if (!state.last) return;
  if (state.last.kind === "id") searchId(state.last.id, state.last.label);
  else if (currentLength().image_search) searchFile(state.last.file);
}

async function init() {
  try {
    state.info = await api("/api/index");
  } catch (e) { status(e.message, true); return; }
  const select = $("bits");
  for (const c of state.info.code_lengths) {
    const option = document.createElement("option");
    option.value = c.bits;
    option.textContent = `${c.bits} bits (${c.num_codes} images)`;
    select.append(option);
  }
  $("k").value = state.info.default_k;
  select.addEventListener("change", rerun);
  $("upload").addEventListener("change", (e) => { if (e.target.files.length) searchFile(e.target.files[0]); });
  $("shuffle").addEventListener("click", loadPicker);
  $("search-id").addEventListener("click", () => { if ($("query-id").value !== "") searchId($("query-id").value); });
  $("controls").addEventListener("submit", (e) => e.preventDefault());
  updateLength();
  await loadPicker();
  document.body.dataset.ready = "true";
  status("ready: upload an image or pick one");
}

document.addEventListener("DOMContentLoaded", init);

// The comparison page: pick models, translate, show outputs and attention heatmaps side by side.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);

const KEY = "translate.apiKey";  // the API key, when the service asks for one (localStorage, this browser only)

async function api(path, body) {
  const headers = body === undefined ? {} : { "Content-Type": "application/json" };
  const key = localStorage.getItem(KEY);
  if (key) headers.Authorization = `Bearer ${key}`;
  const res = await fetch(path, body === undefined ? { headers } : { method: "POST", headers, body: JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (res.status === 401) $("#key-row").hidden = false;
  if (!res.ok) throw new Error(data.detail || `HTTP ${res.status}`);
  return data;
}

$("#use-key").addEventListener("click", () => {
  localStorage.setItem(KEY, $("#api-key").value.trim());
  $("#key-row").hidden = true;
  loadModels();
});

function metricText(m) {
  const keys = Object.keys(m.metrics || {});
  const key = keys.find((k) => k.startsWith("test")) || keys[0];
  if (!key) return "";
  const r = m.metrics[key];
  return ` · BLEU ${Number(r.bleu).toFixed(1)} (${r.split || key})`;
}

async function loadModels() {
  const box = $("#models");
  try {
    const { models } = await api("/v1/models");
    box.querySelectorAll("label").forEach((l) => l.remove());
    $("#models-status")?.remove();
    if (!models.length) box.append("no models loaded");
    for (const m of models) {
      const label = document.createElement("label");
      label.innerHTML = `<input type="checkbox" checked> <span></span>`;
      label.dataset.pair = `${m.src_lang}-${m.tgt_lang}`;
      label.querySelector("input").value = m.name;
      label.querySelector("span").textContent = `${m.name} (${m.arch}, ${(m.parameters / 1e6).toFixed(1)}M${metricText(m)})`;
      box.append(label);
    }
    // One language pair at a time: the models of that pair, side by side.
    const pairs = [...new Set(models.map((m) => `${m.src_lang}-${m.tgt_lang}`))].sort();
    $("#pair").replaceChildren(...pairs.map((p) => new Option(p.replace("-", " → "), p)));
    showPair();
  } catch (e) {
    if ($("#models-status")) $("#models-status").textContent = `could not load models: ${e.message}`;
  }
}

function showPair() {
  const pair = $("#pair").value;
  document.querySelectorAll("#models label").forEach((l) => { l.hidden = l.dataset.pair !== pair; });
  $("#langs").textContent = pair ? `(${pair.replace("-", " → ")})` : "";
}
$("#pair").addEventListener("change", showPair);

// Cell colour: white (0) to the accent blue (1), on a square-root scale so weak attention stays visible.
function shade(w) {
  const a = Math.sqrt(Math.max(0, Math.min(1, w)));
  return `rgba(47, 111, 237, ${a.toFixed(3)})`;
}

function heatmap(t) {
  const table = document.createElement("table");
  table.className = "heatmap";
  const head = table.createTHead().insertRow();
  head.append(document.createElement("th"));
  for (const s of t.src_tokens) {
    const th = document.createElement("th");
    th.textContent = s;
    head.append(th);
  }
  const body = table.createTBody();
  t.tgt_tokens.forEach((tok, i) => {
    const row = body.insertRow();
    const th = document.createElement("th");
    th.textContent = tok;
    row.append(th);
    t.attention[i].forEach((w, j) => {
      const td = row.insertCell();
      td.style.background = shade(w);
      td.title = `${tok} → ${t.src_tokens[j]}: ${w.toFixed(3)}`;
    });
  });
  return table;
}

// Hovering target token i (in the output or the heatmap) highlights it and the source tokens it attended to.
function linkHover(card, t) {
  const rows = card.querySelectorAll(".heatmap tbody tr");
  const cols = card.querySelectorAll(".heatmap thead th");
  const toks = card.querySelectorAll(".output .tok");
  const set = (i) => {
    rows.forEach((r, k) => r.classList.toggle("active", k === i));
    toks.forEach((el, k) => el.classList.toggle("active", k === i));
    const peak = i === null ? 1 : Math.max(...t.attention[i]);
    cols.forEach((th, j) => {
      if (j === 0) return;
      const w = i === null ? 0 : t.attention[i][j - 1];
      th.classList.toggle("hot", i !== null && w >= 0.5 * peak);  // the tokens it attended to most
      th.style.background = i === null ? "" : shade(w / peak);
    });
  };
  rows.forEach((r, i) => { r.addEventListener("mouseenter", () => set(i)); r.addEventListener("mouseleave", () => set(null)); });
  toks.forEach((el, i) => { el.addEventListener("mouseenter", () => set(i)); el.addEventListener("mouseleave", () => set(null)); });
}

function render(result, info) {
  const card = $("#card").content.firstElementChild.cloneNode(true);
  const t = result.translations[0];
  card.dataset.model = result.model;
  $(".name", card).textContent = result.model;
  $(".meta", card).textContent = `${info ? info.arch + " · " : ""}${result.elapsed_ms.toFixed(0)} ms`;
  const out = $(".output", card);
  if (t.attention && t.tgt_tokens.length) {
    // The output as its pieces, so each can be hovered; "▁" marks the start of a word.
    t.tgt_tokens.forEach((p, i) => {
      if (p.startsWith("▁") && i > 0) out.append(" ");
      const span = document.createElement("span");
      span.className = "tok";
      span.textContent = p.replace(/^▁/, "");
      out.append(span);
    });
    $(".heatmap-wrap", card).append(heatmap(t));
    linkHover(card, t);
  } else {
    out.textContent = t.text;
    const note = document.createElement("p");
    note.className = "muted";
    note.textContent = t.attention ? "" : "No attention: this model reads the source only through its final encoder state.";
    $(".heatmap-wrap", card).append(note);
  }
  return card;
}

$("#form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const models = [...document.querySelectorAll("#models label:not([hidden]) input:checked")].map((i) => i.value);
  const status = $("#status");
  const results = $("#results");
  if (!models.length) { status.textContent = "pick at least one model"; return; }
  $("#go").disabled = true;
  status.textContent = "translating…";
  try {
    const [{ models: infos }, data] = await Promise.all([
      api("/v1/models"),
      api("/v1/compare", { text: $("#source").value, models, beam_size: Number($("#beam").value) }),
    ]);
    results.replaceChildren(...data.results.map((r) => render(r, infos.find((m) => m.name === r.model))));
    status.textContent = "";
  } catch (e) {
    status.innerHTML = `<span class="error"></span>`;
    status.firstChild.textContent = e.message;
  } finally {
    $("#go").disabled = false;
  }
});

loadModels();

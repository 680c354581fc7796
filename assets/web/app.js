// The chorus page: reads the run's state over server-sent events and drives it through the
// JSON API documented in docs/web-api.md. No framework, no network beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);

const view = {
  state: "ready",
  rows: new Map(),          // "METHOD name" -> row
  aggregated: null,
  failures: [],
  exceptions: [],
  flows: [],
  history: [],              // {t, users, rps, fps, p50, p95}
  sort: { key: "name", dir: 1 },
  tab: "stats",
  info: {},
};

// ---------- formatting ----------
// One formatter for the page: toLocaleString would build one per call (500 rows a second).
const INT = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
function fmtInt(n) { return n == null ? "" : INT.format(Math.round(n)); }
function fmtMs(n) { return n == null ? "" : (n >= 100 ? Math.round(n).toString() : (Math.round(n * 10) / 10).toString()); }
function fmtRate(n) { return n == null ? "" : (Math.round(n * 10) / 10).toFixed(1); }
const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
function esc(text) { return text == null ? "" : String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]); }

// ---------- API ----------
// The page's token (docs/web-api.md): the server put it in the page; other sites cannot read it.
const TOKEN = (document.querySelector('meta[name="chorus-token"]') || {}).content || "";
async function api(method, path, body) {
  const init = { method, headers: { "X-Chorus-Token": TOKEN } };
  if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  const response = await fetch(path, init);
  let answer = {};
  try { answer = await response.json(); } catch (_) { /* empty body */ }
  if (!response.ok) throw new Error(answer.error || ("the server answered " + response.status));
  return answer;
}

// ---------- state and header ----------
function applyState(info) {
  Object.assign(view.info, info);
  const state = view.info.state || "ready";
  view.state = state;
  $("state").textContent = state;
  $("state").dataset.state = state;
  $("users").textContent = fmtInt(view.info.users || 0) +
    (view.info.target_users != null && view.info.target_users !== view.info.users && (state === "spawning")
      ? " → " + fmtInt(view.info.target_users) : "");
  $("host-shown").textContent = view.info.host || "(scenario host)";
  if (view.info.flows) { view.flows = view.info.flows; renderFlows(); }
  const cut = view.info.cut_iterations || 0;
  $("cut-note").hidden = cut === 0;
  $("cut-note").textContent = fmtInt(cut) + " iterations were cut at the stop: their users did not finish them within the stop timeout.";
  if ("workers" in info) renderWorkers(info.workers);
  const running = state === "spawning" || state === "running";
  $("stop-button").hidden = !running;
  $("edit-button").hidden = !running;
  $("new-button").hidden = state !== "stopped";
  if (!running) $("edit-panel").hidden = true;
  if (state === "ready") $("start-panel").hidden = false;
  if (running) $("start-panel").hidden = true;
  if (!$("start-host").value && view.info.host) $("start-host").value = view.info.host;
}

// ---------- workers (a cluster master's page) ----------
// `workers` is null on one machine: the panel stays hidden.
function renderWorkers(workers) {
  const panel = $("workers-panel");
  if (!Array.isArray(workers)) { panel.hidden = true; return; }
  panel.hidden = false;
  const missing = workers.filter((w) => w.state === "missing").length;
  $("workers-count").textContent = "(" + workers.length + (missing ? ", " + missing + " missing" : "") + ")";
  $("workers-table").tBodies[0].innerHTML = workers.map((w) =>
    `<tr class="worker worker-${esc(w.state)}" data-worker="${esc(w.name)}"><td>${esc(w.name)}</td>` +
    `<td>${esc(w.address)}</td><td class="worker-state">${esc(w.state)}</td>` +
    `<td class="num">${fmtInt(w.users)}</td><td class="num">${fmtInt(w.requests)}</td>` +
    `<td class="num worker-load${w.saturated ? " saturated" : ""}"${w.saturated ? ` title="above 90 % of its ${w.cores} core(s): its latencies include its own queueing"` : ""}>` +
    `${workerLoad(w)}</td></tr>`).join("");
}

// A worker's own CPU and memory ("43 % 31 MiB"), and "saturated" when its CPU stays above
// 90 % of its cores; empty before its first sample.
function workerLoad(w) {
  if (w.cpu_percent == null) return "";
  const mib = (w.memory_bytes / 1048576).toFixed(1);
  return esc(Math.round(w.cpu_percent) + " % " + mib + " MiB" + (w.saturated ? " saturated" : ""));
}

// ---------- statistics table ----------
// Each row is built once and kept; an update rewrites only the cells whose text changed, in
// the rows on or near the screen (an IntersectionObserver says which; a row scrolled into
// view is brought up to date then), and rows are reordered only when the order can have
// changed (new rows, another sort, or a sort by a figure that moved). The table is left
// alone while another tab is shown. With 500 names, rewriting every row each second cost
// 60+ ms of layout; the rows on screen cost a few.
function rowKey(row) { return row.method + " " + row.name; }

const table = {
  rows: new Map(),        // key -> { tr, cells, texts, row }
  order: [],              // keys in the order shown
  orderDirty: true,
  dirty: true,
};

function applyRows(rows, replace) {
  if (replace) { view.rows.clear(); table.orderDirty = true; }
  for (const row of rows || []) {
    const key = rowKey(row);
    if (!view.rows.has(key)) table.orderDirty = true;
    view.rows.set(key, row);
  }
  const key = view.sort.key;
  if (key !== "name" && key !== "method" && rows && rows.length) table.orderDirty = true;
  table.dirty = true;
}

const COLUMNS = [
  ["method", (r) => r.method, ""],
  ["name", (r) => r.name, "name"],
  ["requests", (r) => fmtInt(r.requests), "num"],
  ["failures", (r) => fmtInt(r.failures), "num fails"],
  ["median_ms", (r) => fmtMs(r.median_ms), "num"],
  ["p90_ms", (r) => fmtMs(r.p90_ms), "num"],
  ["p95_ms", (r) => fmtMs(r.p95_ms), "num"],
  ["p99_ms", (r) => fmtMs(r.p99_ms), "num"],
  ["avg_ms", (r) => fmtMs(r.avg_ms), "num"],
  ["min_ms", (r) => fmtMs(r.min_ms), "num"],
  ["max_ms", (r) => fmtMs(r.max_ms), "num"],
  ["avg_size", (r) => fmtInt(r.avg_size), "num"],
  ["current_rps", (r) => fmtRate(r.current_rps), "num"],
  ["current_fps", (r) => fmtRate(r.current_fps), "num"],
  ["connect_p95_ms", (r) => fmtMs(r.connect_p95_ms), "num phase"],
  ["tls_p95_ms", (r) => fmtMs(r.tls_p95_ms), "num phase"],
  ["ttfb_p95_ms", (r) => fmtMs(r.ttfb_p95_ms), "num phase"],
  ["download_p95_ms", (r) => fmtMs(r.download_p95_ms), "num phase"],
];

const nearScreen = new Set();  // keys of the rows on or near the screen
const keyOfRow = new WeakMap(); // tr -> key
const rowWatcher = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    const key = keyOfRow.get(entry.target);
    if (!entry.isIntersecting) { nearScreen.delete(key); continue; }
    nearScreen.add(key);
    const shown = table.rows.get(key), row = view.rows.get(key);
    if (shown && row && shown.row !== row) fillRow(shown, row);
  }
}, { rootMargin: "100px 0px" });

function newRow() {
  const tr = document.createElement("tr");
  const cells = COLUMNS.map(([, , cls]) => {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  });
  return { tr, cells, texts: new Array(COLUMNS.length).fill(null), row: null };
}

function fillRow(shown, row) {
  shown.row = row;
  for (let i = 0; i < COLUMNS.length; i++) {
    const text = COLUMNS[i][1](row);
    if (text !== shown.texts[i]) { shown.texts[i] = text; shown.cells[i].textContent = text; }
  }
  const failing = row.failures > 0;
  if (failing !== shown.tr.classList.contains("failing")) shown.tr.classList.toggle("failing", failing);
  if (shown.detail && performance.now() - shown.detailAt > DETAIL_EVERY_MS) loadDetail(shown);
}

// ---------- a row opened: where its time went ----------
// A click on a row opens a line under it with that name's dns/connect/tls/ttfb/download
// percentiles (GET api/stats/phases), fetched when opened and again, while it stays open and
// the row changes, at most every few seconds.
const DETAIL_EVERY_MS = 3000;
const PHASE_LABELS = { dns: "DNS", connect: "Connect", tls: "TLS handshake", ttfb: "Time to first byte", download: "Download" };

async function loadDetail(shown) {
  shown.detailAt = performance.now();
  const row = shown.row;
  const cell = shown.detail.firstChild;
  try {
    const answer = await api("GET", "api/stats/phases?method=" + encodeURIComponent(row.method) + "&name=" + encodeURIComponent(row.name));
    if (!shown.detail) return;
    cell.innerHTML = answer.phases.length === 0
      ? "<p>No phase measured for this name yet.</p>"
      : `<table class="phases"><thead><tr><th>Phase</th><th class="num">Count</th><th class="num">Average (ms)</th><th class="num">Median (ms)</th>` +
        `<th class="num">90%ile (ms)</th><th class="num">95%ile (ms)</th><th class="num">99%ile (ms)</th><th class="num">Max (ms)</th></tr></thead><tbody>` +
        answer.phases.map((p) => `<tr data-phase="${esc(p.phase)}"><td>${esc(PHASE_LABELS[p.phase] || p.phase)}</td><td class="num">${fmtInt(p.count)}</td>` +
          `<td class="num">${fmtMs(p.avg_ms)}</td><td class="num">${fmtMs(p.p50_ms)}</td><td class="num">${fmtMs(p.p90_ms)}</td>` +
          `<td class="num">${fmtMs(p.p95_ms)}</td><td class="num">${fmtMs(p.p99_ms)}</td><td class="num">${fmtMs(p.max_ms)}</td></tr>`).join("") +
        "</tbody></table>";
  } catch (err) { cell.textContent = err.message; }
}

function toggleDetail(key) {
  const shown = table.rows.get(key);
  if (!shown) return;
  if (shown.detail) {
    shown.detail.remove();
    shown.detail = null;
    shown.tr.classList.remove("open");
    return;
  }
  const detail = document.createElement("tr");
  detail.className = "phase-detail";
  detail.innerHTML = "<td>loading…</td>";
  shown.detail = detail;
  shown.tr.classList.add("open");
  shown.tr.after(detail);
  loadDetail(shown);
}

$("stats-body").addEventListener("click", (event) => {
  const tr = event.target.closest("tr");
  if (tr && keyOfRow.has(tr)) toggleDetail(keyOfRow.get(tr));
});

const COLLATOR = new Intl.Collator("en");
function compareRows(a, b) {
  const { key, dir } = view.sort;
  const x = a[key], y = b[key];
  if (typeof x === "number" && typeof y === "number") return (x - y) * dir;
  return COLLATOR.compare(String(x ?? ""), String(y ?? "")) * dir;
}

let totalShown = null;
function renderTable() {
  table.dirty = false;
  const body = $("stats-body");
  for (const [key, shown] of table.rows) {
    if (!view.rows.has(key)) {
      rowWatcher.unobserve(shown.tr);
      shown.tr.remove();
      if (shown.detail) shown.detail.remove();
      table.rows.delete(key);
      nearScreen.delete(key);
    }
  }
  for (const [key, row] of view.rows) {
    let shown = table.rows.get(key);
    if (!shown) {
      shown = newRow();
      table.rows.set(key, shown);
      keyOfRow.set(shown.tr, key);
      fillRow(shown, row);
      rowWatcher.observe(shown.tr);
    } else if (shown.row !== row && nearScreen.has(key)) {
      fillRow(shown, row);
    }
  }
  if (table.orderDirty) {
    table.orderDirty = false;
    const order = Array.from(view.rows.values()).sort(compareRows).map(rowKey);
    const same = order.length === table.order.length && order.every((k, i) => k === table.order[i]);
    if (!same || body.children.length !== order.length) {
      const fragment = document.createDocumentFragment();
      for (const key of order) {
        const shown = table.rows.get(key);
        fragment.appendChild(shown.tr);
        if (shown.detail) fragment.appendChild(shown.detail);
      }
      body.appendChild(fragment);
      table.order = order;
    }
  }
  if (view.aggregated) {
    if (!totalShown) { totalShown = newRow(); $("stats-total").replaceChildren(totalShown.tr); }
    fillRow(totalShown, { ...view.aggregated, method: "", name: "Aggregated" });
  } else if (totalShown) {
    $("stats-total").replaceChildren();
    totalShown = null;
  }
}

let renderQueued = false;
function renderStats() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    if (view.tab === "stats" && table.dirty) renderTable();
    const agg = view.aggregated;
    $("rps").textContent = agg ? fmtRate(agg.current_rps) : "0";
    $("fail-ratio").textContent = agg && agg.requests ? (Math.round(1000 * agg.failures / agg.requests) / 10) + " %" : "0 %";
  });
}

function showSort() {
  const { key, dir } = view.sort;
  for (const th of document.querySelectorAll("#stats-table th")) {
    th.classList.toggle("sorted-asc", th.dataset.key === key && dir === 1);
    th.classList.toggle("sorted-desc", th.dataset.key === key && dir === -1);
  }
}
showSort();

for (const th of document.querySelectorAll("#stats-table th")) {
  th.addEventListener("click", () => {
    const key = th.dataset.key;
    view.sort = { key, dir: view.sort.key === key ? -view.sort.dir : (key === "name" || key === "method" ? 1 : -1) };
    showSort();
    table.orderDirty = true;
    table.dirty = true;
    renderStats();
  });
}

// ---------- failures, exceptions, flows ----------
function renderFailures() {
  $("failures-body").innerHTML = view.failures.map((f) =>
    `<tr><td>${esc(f.method)}</td><td class="name">${esc(f.name)}</td><td>${esc(f.kind)}</td><td class="num">${fmtInt(f.occurrences)}</td><td class="name">${esc(f.message)}</td></tr>`).join("");
  $("failures-count").textContent = view.failures.length ? "(" + view.failures.length + ")" : "";
}
function renderExceptions() {
  $("exceptions-body").innerHTML = view.exceptions.map((e) =>
    `<tr><td class="num">${fmtInt(e.count)}</td><td class="name">${esc(e.message)}</td></tr>`).join("");
  $("exceptions-count").textContent = view.exceptions.length ? "(" + view.exceptions.length + ")" : "";
}
function renderFlows() {
  const weights = view.flows.reduce((s, f) => s + (f.weight || 0), 0) || 1;
  const runs = view.flows.reduce((s, f) => s + (f.iterations || 0), 0) || 1;
  $("flows-body").innerHTML = view.flows.map((f) =>
    `<tr><td>${esc(f.name)}</td><td class="num">${fmtInt(f.weight)}</td><td class="num">${(100 * f.weight / weights).toFixed(1)} %</td>` +
    `<td class="num">${fmtInt(f.iterations || 0)}</td><td class="num">${(100 * (f.iterations || 0) / runs).toFixed(1)} %</td></tr>`).join("");
}

// ---------- history and charts ----------
const MAX_POINTS = 1800;

// Keeps long runs light: when the series grows past MAX_POINTS, the older half is merged
// pairwise (rates and latencies averaged, users kept at the later value).
function downsample(points) {
  if (points.length <= MAX_POINTS) return points;
  const half = Math.floor(points.length / 2);
  const merged = [];
  for (let i = 0; i + 1 < half; i += 2) {
    const a = points[i], b = points[i + 1];
    merged.push({ t: b.t, users: b.users, rps: (a.rps + b.rps) / 2, fps: (a.fps + b.fps) / 2,
      p50: Math.max(a.p50 || 0, b.p50 || 0), p95: Math.max(a.p95 || 0, b.p95 || 0) });
  }
  return merged.concat(points.slice(half - (half % 2)));
}

// A point is a second of the run; one that comes again (a late report amended it) replaces
// the one shown, wherever it is.
function addPoint(point) {
  if (!point) return;
  const history = view.history;
  let at = history.length;
  while (at > 0 && history[at - 1].t > point.t) at--;
  if (at > 0 && history[at - 1].t === point.t) history[at - 1] = point;
  else history.splice(at, 0, point);
  view.history = downsample(history);
}

function drawChart(canvas, series, unit) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, left = 56, right = 12, top = 10, bottom = 24;
  ctx.clearRect(0, 0, w, h);
  const pts = view.history;
  ctx.font = "12px system-ui, sans-serif";
  ctx.fillStyle = "#667085";
  if (pts.length < 1) { ctx.fillText("waiting for data…", left, h / 2); canvas.dataset.points = "0"; return; }
  const t0 = pts[0].t, t1 = Math.max(pts[pts.length - 1].t, t0 + 1);
  let max = 0;
  for (const s of series) for (const p of pts) max = Math.max(max, p[s.key] || 0);
  max = max > 0 ? max * 1.1 : 1;
  const x = (t) => left + (w - left - right) * (t - t0) / (t1 - t0);
  const y = (v) => h - bottom - (h - top - bottom) * v / max;
  ctx.strokeStyle = "#e4e7ec"; ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = max * i / 4, yy = y(v);
    ctx.beginPath(); ctx.moveTo(left, yy); ctx.lineTo(w - right, yy); ctx.stroke();
    ctx.fillText((v >= 100 ? Math.round(v) : v.toFixed(1)) + unit, 4, yy + 4);
  }
  const span = t1 - t0;
  ctx.fillText(new Date(t0 * 1000).toLocaleTimeString(), left, h - 6);
  ctx.fillText(new Date(t1 * 1000).toLocaleTimeString() + " (" + Math.round(span) + " s)", w - right - 150, h - 6);
  let legendX = left + 8;
  for (const s of series) {
    ctx.strokeStyle = s.color; ctx.lineWidth = 2; ctx.beginPath();
    pts.forEach((p, i) => { const xx = x(p.t), yy = y(p[s.key] || 0); if (i === 0) ctx.moveTo(xx, yy); else ctx.lineTo(xx, yy); });
    ctx.stroke();
    ctx.fillStyle = s.color; ctx.fillRect(legendX, top, 10, 10);
    ctx.fillStyle = "#1d2330"; ctx.fillText(s.label, legendX + 14, top + 9);
    legendX += ctx.measureText(s.label).width + 34;
  }
  canvas.dataset.points = String(pts.length);
}

let chartsQueued = false;
function renderCharts() {
  if (view.tab !== "charts" || chartsQueued) return;
  chartsQueued = true;
  requestAnimationFrame(() => {
    chartsQueued = false;
    drawChart($("chart-rps"), [{ key: "rps", label: "requests/s", color: "#2a7d5b" }, { key: "fps", label: "failures/s", color: "#b42318" }], "");
    drawChart($("chart-latency"), [{ key: "p50", label: "median", color: "#1f6feb" }, { key: "p95", label: "95th percentile", color: "#d97706" }], " ms");
    drawChart($("chart-users"), [{ key: "users", label: "users", color: "#6941c6" }], "");
  });
}

// ---------- tabs ----------
for (const button of document.querySelectorAll(".tabs button")) {
  button.addEventListener("click", () => {
    view.tab = button.dataset.tab;
    for (const b of document.querySelectorAll(".tabs button")) b.classList.toggle("active", b === button);
    for (const section of document.querySelectorAll(".tab")) section.hidden = section.id !== "tab-" + view.tab;
    renderStats();
    renderCharts();
    renderSystem();
    renderCapacity();
  });
}

// ---------- forms ----------
// Three ways to start: users (closed model), an arrival rate (open model), or a capacity
// search (an arrival rate raised step by step while its conditions hold).
function startModel() { return document.querySelector('input[name="model"]:checked').value; }
document.querySelectorAll('input[name="model"]').forEach((radio) => radio.addEventListener("change", () => {
  const model = startModel();
  document.querySelector(".closed-only").hidden = model !== "closed";
  document.querySelector(".open-only").hidden = model === "closed";
  document.querySelector(".capacity-only").hidden = model !== "capacity";
}));

// Numbers are sent as typed: the server validates them once and its message is shown here.
function typed(text) {
  const trimmed = text.trim();
  return trimmed !== "" && !Number.isNaN(Number(trimmed)) ? Number(trimmed) : trimmed;
}

$("start-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("start-error").textContent = "";
  const model = startModel();
  const body = {};
  if (model !== "closed") {
    body.arrival_rate = typed($("start-arrival-rate").value);
    body.max_users = typed($("start-max-users").value);
  }
  if (model === "capacity") {
    body.find_capacity = $("start-conditions").value;
    if ($("start-step-time").value.trim()) body.step_time = $("start-step-time").value.trim();
  }
  if (model === "closed") {
    body.users = typed($("start-users").value);
    body.spawn_rate = typed($("start-spawn-rate").value);
  }
  if ($("start-host").value.trim()) body.host = $("start-host").value.trim();
  if ($("start-run-time").value.trim()) body.run_time = $("start-run-time").value.trim();
  try {
    const answer = await api("POST", "api/start", body);
    view.history = [];
    applySystem({ series: [], saturated: false, saturated_seconds: 0, notices: [] }, true);
    applyCapacity(model === "capacity" ? { conditions: body.find_capacity.split(",").map((c) => c.trim()), steps: [], ended: "" } : null);
    applyState(answer);
    $("start-panel").hidden = true;
  } catch (err) { $("start-error").textContent = err.message; }
});

$("edit-button").addEventListener("click", () => {
  $("edit-users").value = view.info.target_users ?? view.info.users ?? "";
  $("edit-spawn-rate").value = view.info.spawn_rate ?? "";
  $("edit-error").textContent = "";
  $("edit-panel").hidden = false;
});
$("edit-cancel").addEventListener("click", () => { $("edit-panel").hidden = true; });
$("edit-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("edit-error").textContent = "";
  const body = { users: typed($("edit-users").value) };
  if ($("edit-spawn-rate").value.trim()) body.spawn_rate = typed($("edit-spawn-rate").value);
  try {
    applyState(await api("POST", "api/users", body));
    $("edit-panel").hidden = true;
  } catch (err) { $("edit-error").textContent = err.message; }
});
$("stop-button").addEventListener("click", async () => {
  try {
    const answer = await api("POST", "api/stop");
    // The stream can say the run stopped before this answer is read (a stop takes
    // milliseconds when iterations are short): "stopping" is then older news, and applied
    // last it would stay on the page for good.
    if (view.state !== "stopped") applyState(answer);
  } catch (err) { alert(err.message); }
});
$("reset-button").addEventListener("click", async () => {
  try { await api("POST", "api/reset"); view.history = []; } catch (err) { alert(err.message); }
});
$("new-button").addEventListener("click", () => { $("start-panel").hidden = false; });

// ---------- live stream ----------
function applyUpdate(update, full) {
  if (update.info) applyState(update.info);
  if (update.rows) applyRows(update.rows, full);
  if (update.aggregated) { view.aggregated = update.aggregated; table.dirty = true; }
  if (update.failures) { view.failures = update.failures; renderFailures(); }
  if (update.exceptions) { view.exceptions = update.exceptions; renderExceptions(); }
  if (full && update.history) view.history = downsample(update.history);
  if (update.points) update.points.forEach(addPoint);
  else if (update.point) addPoint(update.point);
  if (update.system) applySystem(update.system, full);
  else renderSystem();
  if (full) applyCapacity(update.capacity);
  renderStats();
  renderCharts();
}

function connect() {
  const source = new EventSource("api/stream");
  source.addEventListener("full", (event) => { applyUpdate(JSON.parse(event.data), true); });
  source.addEventListener("update", (event) => { applyUpdate(JSON.parse(event.data), false); });
  source.addEventListener("workers", (event) => { renderWorkers(JSON.parse(event.data).workers); });
  source.addEventListener("capacity", (event) => { applyCapacity(JSON.parse(event.data).capacity); });
  source.onopen = () => { $("connection").textContent = "live"; };
  source.onerror = () => { $("connection").textContent = "reconnecting…"; };
}

// system.js (loaded next) calls connect() once its functions exist.

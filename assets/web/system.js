// The page's System tab and capacity search curve (loaded after app.js, whose `view`, `$`,
// formatters and `api` it uses). System: every monitor series (--monitor, chorus's own CPU
// and memory) charted on the same time axis as requests/s and latency, the current values in
// the header, and a note when chorus's own CPU stays above 90 %. Capacity: each step's rate
// against its p50/p95/p99 and failures, drawn as the search goes and at its end.
"use strict";

const system = {
  series: new Map(),   // name -> { unit, points: [[t, v]] }
  saturated: false,
  saturatedSeconds: 0,
  notices: [],
  charts: new Map(),   // name -> canvas
};
const SYSTEM_MAX_POINTS = 1800;

const UNIT_SUFFIX = { percent: " %", bytes: " MiB", bytes_per_second: " MiB/s", count: "", number: "", per_second: "/s" };
// Bytes are charted in MiB; everything else as measured.
function systemValue(unit, v) { return unit === "bytes" || unit === "bytes_per_second" ? v / 1048576 : v; }
function fmtSystem(unit, v) {
  if (v == null) return "";
  const x = systemValue(unit, v);
  return (Math.abs(x) >= 100 ? Math.round(x).toString() : x.toFixed(1)) + UNIT_SUFFIX[unit];
}

function applySystem(body, full) {
  if (!body) return;
  if (full) {
    system.series.clear();
    for (const s of body.series || []) system.series.set(s.name, { unit: s.unit, points: s.points.slice() });
    // Another run's series (another process) leave with their charts.
    for (const [name, canvas] of system.charts) {
      if (!system.series.has(name)) { canvas.parentElement.remove(); system.charts.delete(name); }
    }
  }
  for (const p of body.points || []) {
    let s = system.series.get(p.name);
    if (!s) { s = { unit: p.unit, points: [] }; system.series.set(p.name, s); }
    const last = s.points[s.points.length - 1];
    if (last && last[0] >= p.t) continue;
    s.points.push([p.t, p.v]);
    if (s.points.length > 2 * SYSTEM_MAX_POINTS) s.points = s.points.filter((_, i) => i % 2 === 1 || i >= s.points.length - SYSTEM_MAX_POINTS);
  }
  if ("saturated" in body) system.saturated = body.saturated;
  if ("saturated_seconds" in body) system.saturatedSeconds = body.saturated_seconds;
  if (body.notices) system.notices = body.notices;
  renderSystemHeader();
  renderSystem();
}

// The header: the CPU of each watched process and of the host, and the host's memory.
function renderSystemHeader() {
  const shown = [];
  for (const [name, s] of systemOrder()) {
    if (!(name.endsWith(".cpu") || name === "host.memory") || !s.points.length) continue;
    shown.push(`<div data-series="${esc(name)}"><span class="label">${esc(name)}</span><span>${esc(fmtSystem(s.unit, s.points[s.points.length - 1][1]))}</span></div>`);
  }
  $("system-figures").innerHTML = shown.slice(0, 6).join("");
  const note = $("saturation-note");
  const running = view.state === "spawning" || view.state === "running";
  note.hidden = !(system.saturated && running) && !(system.saturatedSeconds > 0 && !running);
  note.textContent = system.saturated && running
    ? "chorus's own CPU has stayed above 90 %: latencies include chorus's own queueing. Use fewer users per process, or more workers."
    : "chorus's own CPU was above 90 % for " + system.saturatedSeconds + " s of this run: latencies of those seconds include chorus's own queueing.";
}

// One time axis for every chart of the tab: from the first to the last second of anything.
function systemAxis() {
  let t0 = Infinity, t1 = -Infinity;
  if (view.history.length) { t0 = view.history[0].t; t1 = view.history[view.history.length - 1].t; }
  for (const s of system.series.values()) {
    if (!s.points.length) continue;
    t0 = Math.min(t0, s.points[0][0]); t1 = Math.max(t1, s.points[s.points.length - 1][0]);
  }
  if (!Number.isFinite(t0)) return null;
  return { t0, t1: Math.max(t1, t0 + 1) };
}

// Draws `lines` ([{label, color, points: [[t, v]]}]) on `axis`; records what it drew in the
// canvas's data attributes (points, last value) so the page's tests can read the chart.
const TIME_AXIS = { label: (t) => new Date(t * 1000).toLocaleTimeString(), gap: 2 };
function drawLines(canvas, lines, axis, format, xAxis = TIME_AXIS) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, left = 64, right = 12, top = 10, bottom = 22;
  ctx.clearRect(0, 0, w, h);
  ctx.font = "12px system-ui, sans-serif";
  ctx.fillStyle = "#667085";
  const count = lines.reduce((n, l) => n + l.points.length, 0);
  canvas.dataset.points = String(count);
  if (!axis || count === 0) { ctx.fillText("waiting for data…", left, h / 2); return; }
  let max = 0;
  for (const l of lines) for (const [, v] of l.points) max = Math.max(max, v || 0);
  max = max > 0 ? max * 1.1 : 1;
  const x = (t) => left + (w - left - right) * (t - axis.t0) / (axis.t1 - axis.t0);
  const y = (v) => h - bottom - (h - top - bottom) * v / max;
  ctx.strokeStyle = "#e4e7ec"; ctx.lineWidth = 1;
  for (let i = 0; i <= 3; i++) {
    const v = max * i / 3, yy = y(v);
    ctx.beginPath(); ctx.moveTo(left, yy); ctx.lineTo(w - right, yy); ctx.stroke();
    ctx.fillText(format(v), 4, yy + 4);
  }
  ctx.fillText(xAxis.label(axis.t0), left, h - 6);
  ctx.fillText(xAxis.label(axis.t1), w - right - 80, h - 6);
  let legendX = left + 8;
  for (const l of lines) {
    ctx.strokeStyle = l.color; ctx.lineWidth = 2; ctx.beginPath();
    let previous = null;
    for (const [t, v] of l.points) {
      // A missing second (a gap in the series) breaks the line.
      if (previous == null || t - previous > xAxis.gap) ctx.moveTo(x(t), y(v)); else ctx.lineTo(x(t), y(v));
      previous = t;
    }
    ctx.stroke();
    ctx.fillStyle = l.color; ctx.fillRect(legendX, top, 10, 10);
    ctx.fillStyle = "#1d2330"; ctx.fillText(l.label, legendX + 14, top + 9);
    legendX += ctx.measureText(l.label).width + 34;
  }
  const first = lines[0].points;
  if (first.length) canvas.dataset.last = String(first[first.length - 1][1]);
}

function systemChart(name) {
  let canvas = system.charts.get(name);
  if (!canvas) {
    const box = document.createElement("div");
    box.className = "chart";
    box.innerHTML = `<h3></h3><canvas width="1100" height="150"></canvas>`;
    box.querySelector("h3").textContent = name;
    canvas = box.querySelector("canvas");
    canvas.dataset.series = name;
    $("system-charts").appendChild(box);
    system.charts.set(name, canvas);
  }
  return canvas;
}

// The system under test first (processes, Prometheus endpoints), then the host, then chorus.
function systemRank(name) { return name.startsWith("chorus.") ? 2 : name.startsWith("host.") ? 1 : 0; }
function systemOrder() {
  return Array.from(system.series).sort(([a], [b]) => systemRank(a) - systemRank(b) || COLLATOR.compare(a, b));
}

let systemQueued = false;
function renderSystem() {
  if (view.tab !== "system" || systemQueued) return;
  systemQueued = true;
  requestAnimationFrame(() => {
    systemQueued = false;
    const axis = systemAxis();
    const history = (key) => view.history.map((p) => [p.t, p[key] || 0]);
    drawLines($("system-rps"), [{ label: "requests/s", color: "#2a7d5b", points: history("rps") }], axis, (v) => fmtRate(v));
    drawLines($("system-latency"), [{ label: "median", color: "#1f6feb", points: history("p50") }, { label: "95th percentile", color: "#d97706", points: history("p95") }], axis, (v) => fmtMs(v) + " ms");
    const ordered = systemOrder();
    $("system-now").innerHTML = ordered.map(([name, s]) => {
      const last = s.points[s.points.length - 1];
      return `<tr data-series="${esc(name)}"><td class="name">${esc(name)}</td><td class="num">${last ? esc(fmtSystem(s.unit, last[1])) : ""}</td></tr>`;
    }).join("");
    $("system-empty").hidden = system.series.size > 0;
    for (const [name, s] of ordered) {
      drawLines(systemChart(name), [{ label: name, color: "#6941c6", points: s.points.map(([t, v]) => [t, systemValue(s.unit, v)]) }], axis,
        (v) => (v >= 100 ? Math.round(v) : v.toFixed(1)) + UNIT_SUFFIX[s.unit]);
    }
    $("system-notices").innerHTML = system.notices.map((n) =>
      `<li>${esc(new Date(n.t * 1000).toLocaleTimeString())}: ${esc(n.text)}</li>`).join("");
  });
}

// ---------- capacity search ----------
let capacity = null;

function applyCapacity(body) {
  capacity = body || null;
  $("capacity-tab").hidden = !capacity;
  renderCapacity();
}

function renderCapacity() {
  if (!capacity) return;
  const steps = capacity.steps || [];
  // As the terminal and the reports show a rate: 187.5, 200, 0.25.
  const found = capacity.per_second != null ? String(Math.round(capacity.per_second * 100) / 100) + " iterations/s" : "none yet";
  $("capacity-summary").textContent = "Conditions: " + (capacity.conditions || []).join(", ") +
    ". Highest rate that held: " + found + (capacity.ended ? ". " + capacity.ended : " (searching…)");
  $("capacity-body").innerHTML = steps.map((s, i) =>
    `<tr class="${s.held ? "held" : "failing"}"><td class="num">${i + 1}</td><td class="num">${fmtRate(s.per_second)}</td><td class="num">${fmtRate(s.rps)}</td>` +
    `<td class="num">${fmtMs(s.p50_ms)}</td><td class="num">${fmtMs(s.p95_ms)}</td><td class="num">${fmtMs(s.p99_ms)}</td>` +
    `<td class="num">${s.failure_percent.toFixed(2)} %</td><td class="num">${fmtInt(s.dropped_iterations)}</td><td>${s.held ? "held" : esc(s.why)}</td></tr>`).join("");
  if (view.tab !== "capacity") return;
  // The curve: x is the rate, in the order of the rates (a bisection goes back and forth).
  const sorted = steps.slice().sort((a, b) => a.per_second - b.per_second);
  const axis = sorted.length ? { t0: 0, t1: Math.max(sorted[sorted.length - 1].per_second, 1) } : null;
  const line = (key) => sorted.map((s) => [s.per_second, s[key]]);
  const rates = { label: (r) => fmtRate(r) + "/s", gap: Infinity };
  drawLines($("capacity-latency"), [{ label: "p50", color: "#1f6feb", points: line("p50_ms") }, { label: "p95", color: "#d97706", points: line("p95_ms") },
    { label: "p99", color: "#b42318", points: line("p99_ms") }], axis, (v) => fmtMs(v) + " ms", rates);
  drawLines($("capacity-failures"), [{ label: "failures %", color: "#b42318", points: line("failure_percent") }], axis, (v) => v.toFixed(1) + " %", rates);
}

connect();

// venus-ems dashboard: live view over server-sent events. No third-party code; DOM is built
// with textContent only (values from the bus are never parsed as HTML).
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
let csrf = null;
let points = [];
let spanS = 3600;
let updates = 0;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function num(v) { return typeof v === "number" && isFinite(v) ? v : null; }

function fmt(v, unit, digits) {
  v = num(v);
  if (v === null) return "–";
  if (unit === "W" && Math.abs(v) >= 10000) return (v / 1000).toFixed(1) + " kW";
  return v.toFixed(digits === undefined ? 0 : digits) + (unit ? " " + unit : "");
}

function fmtValue(v, unit) {
  if (typeof v === "number") return fmt(v, unit, Number.isInteger(v) || Math.abs(v) >= 100 ? 0 : 1);
  if (Array.isArray(v)) return v.map((x) => fmtValue(x, unit)).join(" / ");
  if (v === null || v === undefined || v === "") return "–";
  return String(v);
}

function phases(list) {
  if (!Array.isArray(list) || list.length < 2) return "";
  return list.map((v, i) => "L" + (i + 1) + " " + fmt(v, "")).join(" · ") + " W";
}

// ------------------------------------------------------------------ sections

function renderFlows(site) {
  $("pv-w").textContent = fmt(site.pv_w, "W");
  const pvParts = [];
  if (num(site.pv_dc_w) !== null) pvParts.push("DC " + fmt(site.pv_dc_w, "W"));
  if (num(site.pv_ac_w) !== null) pvParts.push("AC " + fmt(site.pv_ac_w, "W"));
  $("pv-detail").textContent = pvParts.join(" · ");
  const g = num(site.grid_w);
  $("grid-w").textContent = fmt(g, "W");
  $("grid-detail").textContent = (g === null ? "" : g >= 0 ? "importing  " : "exporting  ") + phases(site.grid_phases_w);
  $("load-w").textContent = fmt(site.load_w, "W");
  let loads = phases(site.load_phases_w);
  if (num(site.dc_system_w) !== null) loads += (loads ? " · " : "") + "DC " + fmt(site.dc_system_w, "W");
  $("load-detail").textContent = loads;
  const b = site.battery || {};
  const p = num(b.power_w);
  $("battery-w").textContent = fmt(p, "W");
  const soc = num(b.soc_pct);
  $("soc").textContent = soc === null ? "–" : soc.toFixed(1) + " %";
  $("soc-bar").style.width = (soc === null ? 0 : Math.max(0, Math.min(100, soc))) + "%";
  const d = [];
  if (p !== null) d.push(p > 0 ? "charging" : p < 0 ? "discharging" : "idle");
  if (num(b.voltage_v) !== null) d.push(fmt(b.voltage_v, "V", 2));
  if (num(b.current_a) !== null) d.push(fmt(b.current_a, "A", 1));
  if (num(b.ccl_a) !== null || num(b.dcl_a) !== null) {
    d.push("CCL " + fmt(b.ccl_a, "A") + (b.allow_charge === 0 ? " (blocked)" : ""));
    d.push("DCL " + fmt(b.dcl_a, "A") + (b.allow_discharge === 0 ? " (blocked)" : ""));
  }
  if (num(b.soc_floor_pct) !== null) d.push("floor " + fmt(b.soc_floor_pct, "%"));
  $("battery-detail").textContent = d.join(" · ");
}

function renderEss(ess) {
  $("setpoint-w").textContent = fmt(ess.setpoint_w, "W");
  $("tracking-w").textContent = fmt(ess.error_w, "W");
  $("setpoint-owner").textContent = ess.owner || "nobody (ESS's own setting)";
  let detail = ess.method || "";
  if (Array.isArray(ess.setpoints_w)) {
    detail += ": " + ess.setpoints_w.map((v, i) => "L" + (i + 1) + " " + fmt(v, "W")).join(", ");
    if (Array.isArray(ess.errors_w)) detail += " (errors " + ess.errors_w.map((v) => fmt(v, "")).join(" / ") + " W)";
  }
  $("ess-detail").textContent = detail;
}

function renderFeatures(features) {
  const box = $("features");
  if (!features.length) { box.replaceChildren(el("p", { class: "sub" }, "No feature enabled.")); return; }
  box.replaceChildren(...features.map((f) => {
    const card = el("div", { class: "feature", "data-key": f.key },
      el("h3", {}, el("span", { class: "name" }, f.name), el("span", { class: "state " + f.state }, f.state.replace("_", " "))),
      el("div", { class: "decision" }, f.decision || (f.state === "running" ? "running" : "")));
    if (f.reasons.length) card.append(el("ul", { class: "reasons" }, ...f.reasons.map((r) => el("li", {}, r))));
    if (f.error) card.append(el("div", { class: "error" }, "last error: " + f.error));
    if (f.restarts) card.append(el("div", { class: "sub" }, "restarts: " + f.restarts));
    if (f.message) card.append(el("div", { class: "sub message" }, f.message));
    return card;
  }));
}

function renderOutputs(outputs) {
  const body = $("outputs").tBodies[0];
  if (!outputs.length) { body.replaceChildren(el("tr", {}, el("td", { colSpan: 4, class: "sub" }, "No output claimed yet."))); return; }
  body.replaceChildren(...outputs.map((o) => {
    const value = el("td", {}, fmtValue(o.value, ""));
    if (o.written !== null && o.written !== undefined && JSON.stringify(o.written) !== JSON.stringify(o.value)) {
      value.append(el("div", { class: "sub" }, "written " + fmtValue(o.written, "")));
    }
    if (o.error) value.append(el("div", { class: "error" }, o.error));
    return el("tr", { "data-key": o.key },
      el("td", {}, o.name, el("div", { class: "sub" }, o.target)),
      el("td", { class: "owner" }, o.owner || "–"), value, el("td", {}, String(o.writes)));
  }));
}

function renderDevices(devices) {
  $("devices").replaceChildren(...devices.map((d) => {
    const rows = d.values.map(([label, v, unit]) => el("div", { class: "kv" }, el("span", {}, label), el("b", {}, fmtValue(v, unit))));
    const sub = d.kind + (d.instance !== null ? " · instance " + d.instance : "") + (d.connected === 0 ? " · disconnected" : "");
    return el("div", { class: "device", "data-service": d.service },
      el("h3", {}, el("span", {}, d.title)), el("div", { class: "sub" }, sub), ...rows);
  }));
}

function renderMessages(messages) {
  const list = $("messages");
  if (!messages.length) { list.replaceChildren(el("li", { class: "sub" }, "No messages.")); return; }
  list.replaceChildren(...messages.map((m) => el("li", {},
    el("span", { class: "when" }, new Date(m.at).toLocaleTimeString()), el("b", {}, m.feature + ": "), m.text)));
}

// ------------------------------------------------------------------ tunables

const rows = new Map();

function renderTunables(tunables) {
  const form = $("tunables");
  if (!tunables.length) { form.replaceChildren(el("p", { class: "sub" }, "No runtime settings (enable a feature that has some).")); rows.clear(); return; }
  if (form.querySelector("p.sub")) form.replaceChildren();
  const seen = new Set();
  for (const t of tunables) {
    seen.add(t.path);
    let row = rows.get(t.path);
    if (!row) row = addTunable(form, t);
    const input = row.querySelector("input");
    if (t.kind === "number") {
      if (t.min !== null) input.min = t.min;
      if (t.max !== null) input.max = t.max;
    }
    if (document.activeElement !== input && !input.dataset.dirty) input.value = t.value;
    row.dataset.value = t.value;
  }
  for (const [path, row] of rows) if (!seen.has(path)) { row.remove(); rows.delete(path); }
}

function addTunable(form, t) {
  let set = form.querySelector('fieldset[data-group="' + CSS.escape(t.group) + '"]');
  if (!set) { set = el("fieldset", { "data-group": t.group }, el("legend", {}, t.group)); form.append(set); }
  const input = el("input", { type: t.kind === "number" ? "number" : "text", name: t.path, step: "any", required: true });
  input.setAttribute("aria-label", t.group + " " + t.name);
  input.addEventListener("input", () => { input.dataset.dirty = "1"; });
  const button = el("button", { type: "button" }, "Set");
  const status = el("div", { class: "status", role: "status" });
  const row = el("div", { class: "tunable", "data-path": t.path }, el("label", {}, t.name), input, button, status);
  button.addEventListener("click", () => save(t, row));
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); save(t, row); } });
  set.append(row);
  rows.set(t.path, row);
  return row;
}

async function save(t, row) {
  const input = row.querySelector("input"), button = row.querySelector("button"), status = row.querySelector(".status");
  let value = input.value;
  if (t.kind === "number") {
    value = Number(value);
    if (input.value.trim() === "" || !isFinite(value)) { status.className = "status bad"; status.textContent = "enter a number"; return; }
  }
  button.disabled = true;
  status.className = "status"; status.textContent = "saving…";
  try {
    const r = await fetch("/api/settings", {
      method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf || "" },
      body: JSON.stringify({ path: t.path, value }),
    });
    const answer = await r.json().catch(() => ({ ok: false, error: "HTTP " + r.status }));
    if (r.status === 401) { location.href = "/login"; return; }
    delete input.dataset.dirty;
    if (answer.ok) { status.className = "status ok"; status.textContent = "saved"; }
    else {
      status.className = "status bad"; status.textContent = answer.error;
      if (answer.value !== undefined && answer.value !== null) input.value = answer.value;
    }
  } catch (err) {
    status.className = "status bad"; status.textContent = "not saved: " + err;
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ charts

const CHARTS = [
  ["chart-power", "legend-power", [["pv_w", "pv", "PV"], ["load_w", "load", "load"], ["grid_w", "grid", "grid"], ["battery_w", "battery", "battery"]], true],
  ["chart-soc", null, [["soc_pct", "soc", "SoC"]], false],
  ["chart-setpoint", "legend-setpoint", [["grid_w", "grid", "grid"], ["setpoint_w", "setpoint", "setpoint"]], true],
];

function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function drawChart(id, series, withZero) {
  const svg = $(id);
  const W = 300, H = 110, L = 34, T = 6, B = 14;
  const now = points.length ? points[points.length - 1][1] : 0;
  const shown = points.filter((p) => now - p[1] <= spanS);
  let lo = Infinity, hi = -Infinity;
  for (const p of shown) for (const [key] of series) { const v = num(p[2][key]); if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }
  if (withZero && isFinite(lo)) { lo = Math.min(lo, 0); hi = Math.max(hi, 0); }
  if (!isFinite(lo)) { lo = 0; hi = 1; }
  if (hi - lo < 1) { hi += 0.5; lo -= 0.5; }
  const x = (t) => L + (W - L - 2) * (1 - (now - t) / spanS);
  const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  const parts = [svgEl("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }), svgEl("line", { class: "axis", x1: L, y1: H - B, x2: W, y2: H - B }),
    svgEl("text", { x: 2, y: T + 8 }, fmt(hi, "")), svgEl("text", { x: 2, y: H - B }, fmt(lo, "")),
    svgEl("text", { x: L, y: H - 2 }, "-" + Math.round(spanS / 60) + " min"), svgEl("text", { x: W - 22, y: H - 2 }, "now")];
  if (withZero && lo < 0 && hi > 0) parts.push(svgEl("line", { class: "zero", x1: L, y1: y(0), x2: W, y2: y(0) }));
  for (const [key, cls] of series) {
    let run = [];
    const flush = () => { if (run.length > 1) parts.push(svgEl("polyline", { class: "s-" + cls, points: run.join(" "), "data-series": key })); run = []; };
    for (const p of shown) {
      const v = num(p[2][key]);
      if (v === null) { flush(); continue; }
      run.push(x(p[1]).toFixed(1) + "," + y(v).toFixed(1));
    }
    flush();
  }
  svg.replaceChildren(...parts);
}

function drawCharts() {
  for (const [id, legend, series, zero] of CHARTS) {
    drawChart(id, series, zero);
    if (legend && !$(legend).childElementCount) $(legend).append(...series.map(([, cls, label]) => el("i", { class: "s-" + cls }, label)));
  }
}

// ------------------------------------------------------------------ live updates

function render(view) {
  renderFlows(view.site);
  renderEss(view.ess);
  renderFeatures(view.features);
  renderOutputs(view.outputs);
  renderTunables(view.tunables);
  renderDevices(view.devices);
  renderMessages(view.messages);
  const badges = [];
  if (view.dry_run) badges.push(el("span", { class: "badge" }, "dry run"));
  $("badges").replaceChildren(...badges);
  $("footer").textContent = "venus-ems " + (view.daemon || view.version) + " · updated " + new Date().toLocaleTimeString();
  updates += 1;
  document.body.dataset.updates = String(updates);
}

function addPoints(list) {
  for (const p of list) if (!points.length || p[0] > points[points.length - 1][0]) points.push(p);
  const now = points.length ? points[points.length - 1][1] : 0;
  while (points.length && now - points[0][1] > spanS) points.shift();
}

function connect() {
  const link = $("link");
  const source = new EventSource("/api/events");
  source.onopen = () => { link.className = "link live"; link.textContent = "live"; };
  source.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    addPoints(msg.points);
    render(msg.view);
    drawCharts();
    link.className = "link live"; link.textContent = "live";
  };
  source.onerror = async () => {
    link.className = "link stale"; link.textContent = "reconnecting…";
    if (source.readyState === EventSource.CLOSED) {
      const r = await fetch("/api/session");
      if (r.status === 401) { location.href = "/login"; return; }
      setTimeout(connect, 2000);
    }
  };
}

async function start() {
  const r = await fetch("/api/session");
  if (r.status === 401) { location.href = "/login"; return; }
  const s = await r.json();
  csrf = s.csrf;
  const logout = $("logout");
  logout.hidden = !s.password;
  logout.addEventListener("click", async () => {
    await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": csrf } });
    location.href = "/login";
  });
  const h = await fetch("/api/history");
  if (h.ok) { const hist = await h.json(); spanS = hist.span_s || spanS; addPoints(hist.points); }
  connect();
}

start();

// The live page: releases (collector's status, then live progress over server-sent events), alerts, DORA and
// bottlenecks per team. Its requests carry the login cookie (/login?token=...); without one the API says 401 and why.
// Plain JS, no build step, nothing fetched from elsewhere. window.slipway keeps timings for the browser test.
"use strict";

const slipway = { ready: null, shown: [] };
window.slipway = slipway;
const rows = new Map(); // release_id -> latest row data

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 120) return `${value.toFixed(1)} s`;
  if (value < 7200) return `${(value / 60).toFixed(1)} min`;
  return `${(value / 3600).toFixed(1)} h`;
}

function time(iso) {
  const when = iso ? new Date(iso) : null;
  return when && !isNaN(when) ? when.toLocaleTimeString() : "";
}

function renderRow(data) {
  const weight = typeof data.weight === "number" ? data.weight : null;
  const bar = el("span", { class: "bar", title: weight === null ? "no step yet" : `${weight}% on the new version` },
                 el("span", { style: `width:${weight ?? 0}%` }));
  const verdicts = el("span", { class: "verdicts" });
  for (const v of data.verdicts || []) {
    verdicts.append(el("span", { class: `v v-${v.verdict}`, title: `step ${v.step} at ${v.weight ?? "?"}%: ${v.verdict} (${time(v.at)})` }));
  }
  const step = typeof data.step === "number" ? `${data.step + 1}/${data.steps ?? "?"}` : "";
  const tr = el("tr", { "data-release": data.release_id, "data-state": data.state || "", "data-weight": weight ?? "" },
    el("td", {}, data.release_id), el("td", {}, data.service), el("td", {}, data.environment), el("td", {}, data.version),
    el("td", { class: `state-${(data.state || "").replace(" ", ".")}` }, data.state),
    el("td", {}, bar, " ", weight === null ? "" : `${weight}%`), el("td", {}, step), el("td", {}, verdicts),
    el("td", {}, time(data.updated_at)));
  return tr;
}

function showRelease(data) {
  const merged = { ...(rows.get(data.release_id) || {}), ...Object.fromEntries(Object.entries(data).filter(([, v]) => v !== null && v !== undefined)) };
  rows.set(data.release_id, merged);
  const body = document.querySelector("#releases tbody");
  const next = renderRow(merged);
  const current = body.querySelector(`tr[data-release="${CSS.escape(data.release_id)}"]`);
  if (current) current.replaceWith(next); else body.prepend(next);
}

function showAlert(alert) {
  const list = document.getElementById("alerts");
  list.querySelector(".muted")?.remove();
  list.prepend(el("li", { class: `sev-${alert.severity}` },
    `${time(alert.occurred_at)} [${alert.severity}] ${alert.team ?? "-"}/${alert.service ?? "-"}: ${alert.summary ?? ""}`));
  while (list.children.length > 50) list.lastChild.remove();
}

function showDora(reply, days) {
  document.getElementById("dora-window").textContent = `(last ${days} days)`;
  const body = document.querySelector("#dora tbody");
  const pct = rate => `${(rate * 100).toFixed(0)}%`;
  body.replaceChildren(...reply.teams.map(t => el("tr", { "data-team": t.team },
    el("td", {}, t.team), el("td", {}, t.deployments), el("td", {}, t.deployment_frequency_per_day.toFixed(2)),
    el("td", {}, `${seconds(t.lead_time_median_s)} / ${seconds(t.lead_time_p90_s)}`),
    el("td", {}, `${pct(t.change_failure_rate)} (${t.failed_changes}/${t.changes})`),
    el("td", {}, `${seconds(t.time_to_restore_median_s)} / ${seconds(t.time_to_restore_p90_s)}`),
    el("td", { title: `declared ${t.rework_reasons.declared}, emergency ${t.rework_reasons.emergency}, incident ${t.rework_reasons.incident}` },
      `${pct(t.rework_rate)} (${t.rework})`))));
  const svg = document.getElementById("dora-chart");
  const most = Math.max(1, ...reply.teams.map(t => t.deployments));
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  svg.setAttribute("height", String(reply.teams.length * 22 + 4));
  reply.teams.forEach((t, i) => {
    const y = i * 22 + 2, width = 440 * t.deployments / most, failed = 440 * t.failed_changes / most;
    for (const [x, w, colour] of [[140, width, "#3a6ff7"], [140, failed, "#b42318"]]) {
      const rect = document.createElementNS(ns, "rect");
      Object.entries({ x, y, width: w, height: 16, fill: colour }).forEach(([k, v]) => rect.setAttribute(k, v));
      svg.append(rect);
    }
    const label = document.createElementNS(ns, "text");
    Object.entries({ x: 0, y: y + 12, "font-size": 12 }).forEach(([k, v]) => label.setAttribute(k, v));
    label.textContent = `${t.team} (${t.deployments}, ${t.failed_changes} failed)`;
    svg.append(label);
  });
}

function showBottlenecks(reply) {
  document.getElementById("bottlenecks-window").textContent = `(releases that began in the last ${reply.window_days} days)`;
  const body = document.querySelector("#bottlenecks tbody");
  const lines = [];
  for (const t of reply.teams) {
    const kinds = t.ranked.length ? t.ranked : [null];
    kinds.forEach((k, i) => lines.push(el("tr", { "data-team": t.team, "data-kind": k ? k.kind : "" },
      el("td", {}, i === 0 ? t.team : ""), el("td", {}, k ? k.kind : "no waits"), el("td", {}, k ? seconds(k.total_s) : ""),
      el("td", {}, k ? seconds(k.median_s) : ""), el("td", {}, k ? k.releases : t.releases), el("td", {}, k ? k.ongoing : ""),
      el("td", {}, i === 0 ? t.interventions : ""), el("td", {}, i === 0 ? t.flaky_checks : ""))));
  }
  body.replaceChildren(...lines);
}

async function loadBottlenecks(days = 30) {
  try { showBottlenecks(await getJson(`/api/bottlenecks?days=${days}`)); } catch (err) {
    document.querySelector("#bottlenecks tbody").replaceChildren(el("tr", {}, el("td", { colspan: 8, class: "muted" }, err.message)));
  }
}

async function getJson(path) {
  const reply = await fetch(path);
  if (!reply.ok) throw new Error(`${path}: ${reply.status} ${(await reply.json().catch(() => ({}))).detail ?? ""}`);
  return reply.json();
}

async function loadReleases() {
  const [logged, live] = await Promise.all([getJson("/api/releases?limit=50"), getJson("/api/live")]);
  for (const r of [...logged.releases].reverse()) showRelease(r);
  for (const r of [...live.releases].reverse()) showRelease(r);
}

async function loadDora(days = 30) {
  try { showDora(await getJson(`/api/dora/teams?days=${days}`), days); } catch (err) { console.warn(err); }
}

function connect() {
  const status = document.getElementById("status");
  const stream = new EventSource("/api/stream");
  stream.addEventListener("hello", () => { status.textContent = "live"; status.className = "live"; });
  stream.addEventListener("release", message => {
    const data = JSON.parse(message.data);
    if (data.release) showRelease(data.release);
    slipway.shown.push({ ...data.event, shown_at: Date.now() });
    if (slipway.shown.length > 1000) slipway.shown.shift();
    if (["DeploymentSucceeded", "DeploymentFailed", "RollbackCompleted"].includes(data.event.type)) scheduleDora();
  });
  stream.addEventListener("alert", message => showAlert(JSON.parse(message.data).alert));
  stream.addEventListener("resync", () => loadReleases().catch(console.warn));
  stream.onerror = () => { status.textContent = "reconnecting…"; status.className = "down"; };
  return new Promise(resolve => stream.addEventListener("hello", resolve, { once: true }));
}

let doraTimer = null;
function scheduleDora() { // a burst of endings refreshes the tables once
  clearTimeout(doraTimer);
  doraTimer = setTimeout(() => { loadDora(); loadBottlenecks(); }, 1000);
}

(async () => {
  try {
    const me = await getJson("/api/me");
    document.getElementById("who").textContent = `${me.identity}${me.teams ? ` (teams ${me.teams.join(", ")})` : ""}`;
  } catch (err) {
    const status = document.getElementById("status");
    status.textContent = `not logged in: ${err.message}; run \`slipway dashboard login\` and open its link`;
    status.className = "down";
    return;
  }
  const live = connect();
  try {
    const alerts = await getJson("/api/alerts");
    [...alerts.alerts].reverse().forEach(showAlert);
    await loadReleases();
  } catch (err) {
    document.getElementById("status").textContent = String(err.message);
  }
  await live;
  slipway.ready = performance.now();
  loadDora();
  loadBottlenecks();
})();

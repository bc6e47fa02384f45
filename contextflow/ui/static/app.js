// contextflow trace viewer. Every value from a trace is untrusted: it reaches the page only
// through textContent or SVG text nodes, never through innerHTML.
"use strict";

const EMBEDDED = (() => {
  const el = document.getElementById("cf-data");
  return el ? JSON.parse(el.textContent) : null;
})();

const SVG = "http://www.w3.org/2000/svg";

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick" || k === "onchange" || k === "oninput") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function s(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = String(text);
  return el;
}

const fmtCost = (v) => "$" + (v || 0).toFixed((v || 0) < 0.01 ? 6 : 4);
const fmtS = (v) => (v === null || v === undefined ? "–" : v < 1 ? (v * 1000).toFixed(0) + " ms" : v.toFixed(2) + " s");
const fmtTime = (t) => (t ? new Date(t * 1000).toLocaleString() : "–");
const text = (v) => (typeof v === "string" ? v : JSON.stringify(v, null, 2));

async function api(path) {
  if (EMBEDDED) {
    if (path === "/api/runs") return EMBEDDED.runs;
    const m = path.match(/^\/api\/runs\/([^/?]+)$/);
    if (m && EMBEDDED.run && EMBEDDED.run.run_id === decodeURIComponent(m[1])) return EMBEDDED.run;
    throw new Error("this exported file holds one run only; open the live viewer (contextflow ui) for more");
  }
  const res = await fetch(path);
  const body = await res.json();
  if (!res.ok) throw new Error(body.detail || res.statusText);
  return body;
}

const root = () => document.getElementById("app");

function showError(err) {
  root().replaceChildren(h("p", { class: "error", id: "error" }, String(err.message || err)));
}

// ---- runs list --------------------------------------------------------------------------------
async function renderRuns() {
  const runs = await api("/api/runs");
  let sortKey = "started", desc = true, filter = "";
  const picked = new Set();
  const columns = [
    ["run_id", "Run"], ["pipeline", "Pipeline"], ["status", "Status"], ["cost_usd", "Cost", true],
    ["tokens", "Tokens", true], ["duration_s", "Duration", true], ["models", "Models"], ["started", "Started"],
  ];
  const tbody = h("tbody");
  const compareBtn = h("button", { id: "compare", onclick: () => {
    const [a, b] = [...picked];
    if (a && b) location.hash = `#/compare/${encodeURIComponent(a)}/${encodeURIComponent(b)}`;
  } }, "Compare 2 selected");
  function draw() {
    const rows = runs
      .filter((r) => !filter || [r.run_id, r.pipeline, r.status, Object.keys(r.models || {}).join(" ")].join(" ").toLowerCase().includes(filter))
      .sort((x, y) => {
        const a = x[sortKey] ?? "", b = y[sortKey] ?? "";
        return (a < b ? -1 : a > b ? 1 : 0) * (desc ? -1 : 1);
      });
    tbody.replaceChildren(...rows.map((r) => h("tr", { "data-run": r.run_id },
      h("td", {}, h("input", { type: "checkbox", onchange: (e) => (e.target.checked ? picked.add(r.run_id) : picked.delete(r.run_id)) }),
        " ", h("a", { href: `#/run/${encodeURIComponent(r.run_id)}` }, r.run_id)),
      h("td", {}, r.pipeline || ""), h("td", { class: "status-" + r.status }, r.status || ""),
      h("td", { class: "num" }, fmtCost(r.cost_usd)), h("td", { class: "num" }, r.tokens),
      h("td", { class: "num" }, fmtS(r.duration_s)),
      h("td", {}, Object.entries(r.models || {}).map(([m, n]) => `${m} ×${n}`).join(", ")),
      h("td", {}, fmtTime(r.started)))));
  }
  const head = h("tr", {}, columns.map(([key, label, num]) => h("th", { class: num ? "num" : "", onclick: () => {
    desc = sortKey === key ? !desc : true; sortKey = key; draw();
  } }, label)));
  const search = h("input", { id: "filter", placeholder: "filter by run, pipeline, status or model", size: 40,
    oninput: (e) => { filter = e.target.value.toLowerCase(); draw(); } });
  draw();
  root().replaceChildren(h("h1", {}, "Runs"), h("div", { class: "toolbar" }, search, compareBtn),
    h("table", { id: "runs" }, h("thead", {}, head), tbody));
}

// ---- run page ---------------------------------------------------------------------------------
function layers(nodes, edges) {
  const preds = new Map(nodes.map((n) => [n, []]));
  for (const [u, v] of edges) if (preds.has(v)) preds.get(v).push(u);
  const depth = new Map();
  const visit = (n, seen = new Set()) => {
    if (depth.has(n)) return depth.get(n);
    if (seen.has(n)) return 0;
    seen.add(n);
    const d = Math.max(-1, ...preds.get(n).map((p) => visit(p, seen))) + 1;
    depth.set(n, d);
    return d;
  };
  nodes.forEach((n) => visit(n));
  const byLayer = [];
  for (const n of nodes) (byLayer[depth.get(n)] ||= []).push(n);
  return byLayer;
}

function colour(value, max) {
  const t = max > 0 ? Math.min(1, value / max) : 0;
  const light = 92 - t * 50;
  return `hsl(${220 - t * 200}, 80%, ${light}%)`;
}

function drawDag(run, metric, onPick) {
  const W = 170, H = 38, GX = 60, GY = 18;
  const grid = layers(run.nodes, run.edges);
  const pos = new Map();
  grid.forEach((col, i) => col.forEach((n, j) => pos.set(n, [20 + i * (W + GX), 20 + j * (H + GY)])));
  const width = 40 + grid.length * (W + GX), height = 40 + Math.max(1, ...grid.map((c) => c.length)) * (H + GY);
  const svg = s("svg", { width, height, id: "dag", role: "img" });
  const crit = new Set(run.critical_path);
  const critEdge = new Set(run.critical_path.slice(1).map((n, i) => run.critical_path[i] + "→" + n));
  for (const [u, v] of run.edges) {
    if (!pos.has(u) || !pos.has(v)) continue;
    const [x1, y1] = pos.get(u), [x2, y2] = pos.get(v);
    const onCrit = critEdge.has(u + "→" + v);
    svg.appendChild(s("path", { d: `M${x1 + W},${y1 + H / 2} C${x1 + W + GX / 2},${y1 + H / 2} ${x2 - GX / 2},${y2 + H / 2} ${x2},${y2 + H / 2}`,
      fill: "none", stroke: onCrit ? "#d92d20" : "#98a2b3", "stroke-width": onCrit ? 3 : 1.5 }));
  }
  const values = run.nodes.map((n) => (run.by_node[n] || {})[metric] || 0);
  const max = Math.max(0, ...values);
  for (const n of run.nodes) {
    const [x, y] = pos.get(n);
    const info = run.by_node[n] || {};
    const g = s("g", { class: "dag-node", "data-node": n, transform: `translate(${x},${y})` });
    g.appendChild(s("rect", { width: W, height: H, rx: 6, fill: colour(info[metric] || 0, max),
      stroke: crit.has(n) ? "#d92d20" : "#667085", "stroke-width": crit.has(n) ? 2.5 : 1 }));
    g.appendChild(s("text", { x: 8, y: 15 }, n.length > 22 ? n.slice(0, 21) + "…" : n));
    g.appendChild(s("text", { x: 8, y: 30, fill: "#344054" },
      metric === "cost_usd" ? fmtCost(info.cost_usd) : fmtS(info.latency_s)));
    g.appendChild(s("title", {}, `${n}: ${info.status || ""}`));
    g.addEventListener("click", () => onPick(n));
    svg.appendChild(g);
  }
  return svg;
}

// Each node's row is followed by its own calls and retrievals, so concurrent nodes' attempts
// never interleave under the wrong node; nodes and children are each in start order.
function treeOrder(spans) {
  const byStart = [...spans].sort((a, b) => a.start - b.start);
  const ids = new Set(byStart.map((sp) => sp.span_id));
  const children = new Map();
  const roots = [];
  for (const sp of byStart) {
    if (sp.parent_id && ids.has(sp.parent_id) && sp.kind !== "node") {
      if (!children.has(sp.parent_id)) children.set(sp.parent_id, []);
      children.get(sp.parent_id).push(sp);
    } else roots.push(sp);
  }
  const out = [];
  const visit = (sp) => { out.push(sp); (children.get(sp.span_id) || []).forEach(visit); };
  roots.forEach(visit);
  return out;
}

function waterfall(run, onPick) {
  const spans = treeOrder(run.spans.filter((sp) => sp.kind !== "decision" && sp.kind !== "run"));
  const t0 = Math.min(...spans.map((sp) => sp.start)), t1 = Math.max(...spans.map((sp) => sp.end || sp.start));
  const span = Math.max(t1 - t0, 1e-6), W = 900, L = 260, RH = 18;
  const svg = s("svg", { width: L + W + 80, height: 30 + spans.length * RH, id: "waterfall" });
  for (let i = 0; i <= 4; i++) {
    const x = L + (W * i) / 4;
    svg.appendChild(s("line", { x1: x, x2: x, y1: 14, y2: 30 + spans.length * RH, stroke: "#eaecf0" }));
    svg.appendChild(s("text", { x: x - 10, y: 11, fill: "#667085" }, fmtS((span * i) / 4)));
  }
  spans.forEach((sp, i) => {
    const y = 22 + i * RH;
    const x = L + ((sp.start - t0) / span) * W, w = Math.max(2, (((sp.end || sp.start) - sp.start) / span) * W);
    const g = s("g", { class: "waterfall-row", "data-span": sp.span_id });
    const indent = sp.kind === "node" ? 0 : 14;
    g.appendChild(s("text", { x: 4 + indent, y: y + 11 }, `${sp.kind === "node" ? sp.node_id : sp.name}`.slice(0, 34)));
    g.appendChild(s("rect", { x, y: y + 2, width: w, height: RH - 6, rx: 2,
      fill: sp.status === "error" || sp.status === "failed" ? "#f04438" : sp.kind === "node" ? "#98a2b3" : "#3559e0" }));
    g.appendChild(s("text", { x: x + w + 4, y: y + 11, fill: "#667085" }, fmtS((sp.end || sp.start) - sp.start)));
    g.addEventListener("click", () => sp.node_id && onPick(sp.node_id));
    svg.appendChild(g);
  });
  return svg;
}

function breakdown(title, entries, id) {
  const max = Math.max(1e-12, ...entries.map(([, e]) => e.cost_usd));
  return h("div", {}, h("h2", {}, title), h("table", { id },
    h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", { class: "num" }, "Cost"), h("th", { class: "num" }, "Tokens"), h("th", { class: "barcell" }, ""))),
    h("tbody", {}, entries.sort((a, b) => b[1].cost_usd - a[1].cost_usd).map(([name, e]) => h("tr", {},
      h("td", {}, name), h("td", { class: "num" }, fmtCost(e.cost_usd)), h("td", { class: "num" }, e.tokens),
      h("td", { class: "barcell" }, h("span", { class: "bar", style: `width:${(100 * e.cost_usd) / max}%` })))))));
}

function nodeDetails(run, nodeId) {
  const node = run.spans.find((sp) => sp.kind === "node" && sp.node_id === nodeId);
  const children = run.spans.filter((sp) => sp.parent_id === (node && node.span_id));
  const info = run.by_node[nodeId] || {};
  const out = [h("h2", {}, `Node ${nodeId}`),
    h("div", { class: "cards" },
      card("Status", info.status || "–"), card("Cost", fmtCost(info.cost_usd)), card("Tokens", info.tokens || 0),
      card("Latency", fmtS(info.latency_s)), card("Model", info.model || "–"))];
  const attrs = (node && node.attributes) || {};
  if (attrs["error.message"]) out.push(h("pre", { class: "error" }, attrs["error.message"]));
  for (const sp of children) {
    const a = sp.attributes;
    if (sp.kind === "attempt") {
      out.push(h("h2", {}, `${sp.name} (attempt ${a["contextflow.attempt"]}) — ${sp.status}`),
        h("div", { class: "muted" }, `${a["gen_ai.usage.input_tokens"]} in / ${a["gen_ai.usage.output_tokens"]} out tokens · ${fmtCost(a["gen_ai.usage.cost"])} (${a["gen_ai.usage.cost.source"]}) · ${fmtS(a["contextflow.latency_s"])}`));
      if (a["contextflow.verdicts"]) out.push(h("div", {}, "Verifier results:",
        h("ul", {}, a["contextflow.verdicts"].map((v) => h("li", {}, `${v.name}: ${v.passed ? "pass" : "FAIL"} ${v.detail || ""}`)))));
      if (a["contextflow.routing"]) out.push(h("div", {}, "Routing decision:", h("pre", {}, text(a["contextflow.routing"]))));
      if (a["error.message"]) out.push(h("pre", { class: "error" }, a["error.message"]));
      out.push(h("div", { class: "grid2" },
        h("div", {}, h("b", {}, "Prompt"), h("pre", { class: "prompt" }, text(sp.prompt ?? a["contextflow.prompt"] ?? ""))),
        h("div", {}, h("b", {}, "Response"), h("pre", { class: "response" }, text(a["contextflow.response"] ?? "")))));
    } else if (sp.kind === "retrieval") {
      const items = a["contextflow.context.items"] || [];
      const max = Math.max(1, ...items.map((it) => it.tokens || 0));
      out.push(h("h2", {}, `Context window: ${a["contextflow.context.used_tokens"]} / ${a["contextflow.context.budget_tokens"]} tokens`),
        h("table", { class: "context" }, h("thead", {}, h("tr", {}, ["Item", "Source", "Score", "Reason", "Tokens", ""].map((t) => h("th", {}, t)))),
          h("tbody", {}, items.map((it) => h("tr", {},
            h("td", {}, `${it.path}:${it.start_line}-${it.end_line}`), h("td", {}, it.source || (it.sources || []).join(",")),
            h("td", { class: "num" }, (it.score ?? 0).toFixed(3)), h("td", {}, it.reason || ""), h("td", { class: "num" }, it.tokens),
            h("td", { class: "barcell" }, h("span", { class: "bar", style: `width:${(100 * (it.tokens || 0)) / max}%` })))))));
    } else if (sp.kind === "decision") {
      out.push(h("div", { class: "decision" }, `Decision: ${a["contextflow.decision"]} by ${a["contextflow.actor"]} at ${fmtTime(sp.start)}`,
        a["contextflow.comment"] ? ` — “${a["contextflow.comment"]}”` : "", a["contextflow.diff"] ? h("pre", {}, a["contextflow.diff"]) : null));
    }
  }
  if ("contextflow.output" in attrs) out.push(h("b", {}, "Output"), h("pre", { class: "output" }, text(attrs["contextflow.output"])));
  if (attrs["contextflow.proposal"] !== undefined) out.push(h("b", {}, "Waiting for approval; proposal:"), h("pre", {}, text(attrs["contextflow.proposal"])),
    EMBEDDED ? null : approvalPanel(run.run_id, nodeId));
  return out;
}

// ---- approvals (contextflow/ui/approvals.py): approve / edit / reject a waiting node -----------
// The served page carries the value decisions must echo; another site cannot read it.
const csrfValue = () => (document.querySelector('meta[name="contextflow-csrf"]') || {}).content || "";

async function decide(runId, nodeId, action, body) {
  const res = await fetch(`/api/runs/${encodeURIComponent(runId)}/nodes/${encodeURIComponent(nodeId)}/${action}`, {
    method: "POST", headers: { "Content-Type": "application/json", "X-Contextflow-Action": "1", "X-Contextflow-CSRF": csrfValue() },
    body: JSON.stringify(body) });
  const out = await res.json();
  if (!res.ok) throw new Error(out.detail || res.statusText);
  return out;
}

// Redraw the run with ``nodeId``'s panel open (#/run/ID/NODE), whether or not the hash changes.
function showNode(runId, nodeId) {
  const target = `#/run/${encodeURIComponent(runId)}/${encodeURIComponent(nodeId)}`;
  if (location.hash === target) route(); else location.hash = target;
}

async function waitForRun(runId, nodeId, note) {
  for (let i = 0; i < 240; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const p = await api(`/api/runs/${encodeURIComponent(runId)}/pending`).catch(() => null);
    const state = p && p.resume ? p.resume.state : "done";
    if (state === "error") { note.textContent = `resume failed: ${p.resume.error}`; return; }
    if (state === "done") { note.textContent = `run ${p && p.resume ? p.resume.status : "resumed"}`; showNode(runId, nodeId); return; }
  }
  note.textContent = "the run is still going; reload the page to see it";
}

function approvalPanel(runId, nodeId) {
  const box = h("div", { id: "approval" }, h("span", { class: "muted" }, "Loading the decision…"));
  api(`/api/runs/${encodeURIComponent(runId)}/pending`).then((p) => {
    const entry = p.nodes[nodeId];
    if (!entry) { box.replaceChildren(h("span", { class: "muted" }, "No decision is needed for this node now.")); return; }
    const note = h("span", { id: "approval-note" });
    const comment = h("input", { id: "approval-comment", placeholder: "comment (optional)", size: 30 });
    const editor = h("textarea", { id: "approval-edit", rows: 8, cols: 80 });
    editor.value = text(entry.editable ?? "");
    const act = (action, body) => async () => {
      note.textContent = "recording…";
      try {
        const out = await decide(runId, nodeId, action, { ...body(), comment: comment.value || null });
        note.textContent = out.resuming ? "decision recorded; resuming the run…" : "decision recorded";
        if (out.resuming) await waitForRun(runId, nodeId, note); else showNode(runId, nodeId);
      } catch (e) { note.textContent = String(e.message || e); }
    };
    const parsed = () => { try { return { value: JSON.parse(editor.value) }; } catch (e) { return { value: editor.value }; } };
    const effect = { ...(entry.proposal || {}), ...((entry.proposal || {}).proposal || {}) };
    const shows = [];
    if (typeof effect.diff === "string") shows.push(h("b", {}, "It would change:"), h("pre", { id: "approval-diff" }, effect.diff));
    if (typeof effect.command === "string") shows.push(h("b", {}, `It would run (in ${effect.cwd || "the working tree"}):`), h("pre", { id: "approval-command" }, effect.command));
    box.replaceChildren(
      h("div", {}, ...shows),
      h("div", { class: "toolbar" },
        h("button", { id: "approve", onclick: act("approve", () => ({})) }, "Approve"),
        h("button", { id: "edit", onclick: act("edit", parsed) }, "Save edit and go on"),
        h("button", { id: "reject", onclick: act("reject", () => ({ abort: false })) }, "Reject (skip branch)"),
        h("button", { id: "abort", onclick: act("reject", () => ({ abort: true })) }, "Reject and abort run"),
        comment, note),
      h("div", {}, h("b", {}, "Edit (JSON; inputs before a tool runs, else the output):")), editor);
  }).catch((e) => box.replaceChildren(h("span", { class: "error" }, String(e.message || e))));
  return box;
}

const card = (label, value) => h("div", { class: "card" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value));

async function renderRun(runId, openNode) {
  const run = await api(`/api/runs/${encodeURIComponent(runId)}`);
  let metric = "cost_usd", selected = null;
  const dagBox = h("div", { class: "panel" }), details = h("div", { class: "panel", id: "details" }, h("span", { class: "muted" }, "Click a node to see its prompt, response, attempts and context."));
  const pick = (n) => { selected = n; details.replaceChildren(...nodeDetails(run, n)); drawDagBox(); };
  const costBtn = h("button", { class: "active", id: "by-cost", onclick: () => { metric = "cost_usd"; costBtn.classList.add("active"); latBtn.classList.remove("active"); drawDagBox(); } }, "Colour by cost");
  const latBtn = h("button", { id: "by-latency", onclick: () => { metric = "latency_s"; latBtn.classList.add("active"); costBtn.classList.remove("active"); drawDagBox(); } }, "Colour by latency");
  function drawDagBox() {
    const svg = drawDag(run, metric, pick);
    if (selected) svg.querySelector(`[data-node="${CSS.escape(selected)}"]`)?.classList.add("selected");
    dagBox.replaceChildren(svg);
  }
  drawDagBox();
  const models = Object.keys(run.by_model);
  const waitingNodes = Object.keys(run.by_node).filter((n) => run.by_node[n].status === "waiting");
  const whatIf = h("div", { class: "toolbar", id: "whatif" });
  if (!EMBEDDED) {
    const nodeSel = h("select", { id: "whatif-node" }, Object.keys(run.by_node).filter((n) => (run.by_node[n].tokens || 0) > 0).map((n) => h("option", { value: n }, n)));
    const modelIn = h("input", { id: "whatif-model", placeholder: "model, e.g. gpt-4o-mini", size: 28 });
    const result = h("span", { id: "whatif-result" });
    whatIf.append("What if", nodeSel, "used", modelIn, h("button", { onclick: async () => {
      try {
        const r = await api(`/api/runs/${encodeURIComponent(run.run_id)}/whatif?node=${encodeURIComponent(nodeSel.value)}&model=${encodeURIComponent(modelIn.value)}`);
        result.textContent = `node ${fmtCost(r.node_cost_usd)} → ${fmtCost(r.node_cost_what_if_usd)}; run ${fmtCost(r.run_cost_usd)} → ${fmtCost(r.run_cost_what_if_usd)}`;
      } catch (e) { result.textContent = String(e.message || e); }
    } }, "Price it"), result);
  }
  root().replaceChildren(
    h("h1", {}, `${run.pipeline} · `, h("span", { id: "run-id" }, run.run_id)),
    h("div", { class: "cards", id: "totals" },
      card("Status", run.status), card("Cost", fmtCost(run.cost_usd)), card("Tokens", run.tokens),
      card("Input / output", `${run.input_tokens} / ${run.output_tokens}`), card("Duration", fmtS(run.duration_s)),
      card("Models", models.join(", ") || "none")),
    ...(run.error ? [h("pre", { class: "error" }, run.error)] : []),
    ...(waitingNodes.length && !EMBEDDED ? [h("div", { class: "toolbar", id: "waiting-banner" }, "Waiting for a decision:",
      waitingNodes.map((n) => h("button", { "data-node": n, onclick: () => pick(n) }, n)))] : []),
    h("h2", {}, "DAG ", h("span", { class: "muted" }, "(red: critical path)")), h("div", { class: "toolbar" }, costBtn, latBtn), dagBox,
    h("h2", {}, "Waterfall"), h("div", { class: "panel" }, waterfall(run, pick)),
    h("div", { class: "grid2" }, breakdown("Cost by node", Object.entries(run.by_node), "by-node"), breakdown("Cost by model", Object.entries(run.by_model), "by-model")),
    whatIf, details);
  if (openNode && run.by_node[openNode]) pick(openNode);
  // live.js: while the run is going, draw it again as its trace grows (keeping the open node).
  if (!EMBEDDED && typeof watchRun === "function") watchRun(run, (open) => renderRun(run.run_id, selected || open).catch(showError));
}

// ---- compare ----------------------------------------------------------------------------------
async function renderCompare(a, b) {
  const rows = await api(`/api/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
  const delta = (v, f) => h("td", { class: "num" }, (v > 0 ? "+" : "") + f(v));
  root().replaceChildren(h("h1", {}, `Compare ${a} → ${b}`), h("table", { id: "compare-table" },
    h("thead", {}, h("tr", {}, ["Node", "Model A", "Model B", "Tokens A", "Tokens B", "Δ tokens", "Cost A", "Cost B", "Δ cost", "Latency A", "Latency B", "Δ latency"].map((t) => h("th", {}, t)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, h("td", {}, r.node_id), h("td", {}, r.a.model || "–"), h("td", {}, r.b.model || "–"),
      h("td", { class: "num" }, r.a.tokens ?? "–"), h("td", { class: "num" }, r.b.tokens ?? "–"), delta(r.delta_tokens, (v) => v),
      h("td", { class: "num" }, fmtCost(r.a.cost_usd)), h("td", { class: "num" }, fmtCost(r.b.cost_usd)), delta(r.delta_cost_usd, fmtCost),
      h("td", { class: "num" }, fmtS(r.a.latency_s)), h("td", { class: "num" }, fmtS(r.b.latency_s)), delta(r.delta_latency_s, fmtS))))));
}

async function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  try {
    if (parts[0] === "run" && parts[1]) await renderRun(parts[1], parts[2]);
    else if (parts[0] === "compare" && parts[2]) await renderCompare(parts[1], parts[2]);
    else if (EMBEDDED && EMBEDDED.run) await renderRun(EMBEDDED.run.run_id);
    else await renderRuns();
    document.body.setAttribute("data-ready", "1");
  } catch (err) { showError(err); document.body.setAttribute("data-ready", "1"); }
}

window.addEventListener("hashchange", route);
route();

// Live updates of a running run: contextflow/ui/live.py streams the trace's new and changed spans
// as server-sent events, and the run page (app.js) is redrawn from /api/runs/ID as they come.
// Event payloads are untrusted trace data: they are parsed as JSON and never used as HTML.
"use strict";

const LIVE = { source: null, runId: null, refresh: null, timer: null, waiting: [], dirtyBox: null, events: 0 };

function liveState(value) { document.body.dataset.live = value; }

function stopWatching() {
  if (LIVE.source) LIVE.source.close();
  clearTimeout(LIVE.timer);
  Object.assign(LIVE, { source: null, runId: null, timer: null, waiting: [] });
  liveState("off");
}

// A person typing a decision must not lose it to a redraw: wait while the approval box is in use.
function editingApproval() {
  const box = document.getElementById("approval");
  return !!box && (box.contains(document.activeElement) || box === LIVE.dirtyBox);
}

function redrawSoon(delay) {
  clearTimeout(LIVE.timer);
  LIVE.timer = setTimeout(() => {
    if (editingApproval()) { redrawSoon(1000); return; }
    const open = LIVE.waiting.shift();  // a node that just started waiting for a decision
    if (LIVE.refresh) LIVE.refresh(open);
  }, delay === undefined ? 150 : delay);
}

// Called by renderRun after every draw; ``refresh(openNode)`` draws the run page again.
function watchRun(run, refresh) {
  LIVE.refresh = refresh;
  if (LIVE.runId === run.run_id && (LIVE.source || run.status !== "running")) return;  // watching, or its feed ended
  stopWatching();
  if (run.status !== "running") return;
  LIVE.runId = run.run_id;
  const source = new EventSource(`/api/runs/${encodeURIComponent(run.run_id)}/events`);
  LIVE.source = source;
  liveState("connecting");
  const seen = () => { LIVE.events += 1; document.body.dataset.liveEvents = String(LIVE.events); };
  // What changed between the page's fetch and the feed's first look is caught by one redraw.
  source.addEventListener("ready", () => { liveState("open"); redrawSoon(); });
  source.addEventListener("span", (e) => {
    seen();
    const span = JSON.parse(e.data);
    if (span.kind === "node" && span.status === "waiting" && typeof span.node_id === "string") LIVE.waiting.push(span.node_id);
    redrawSoon();
  });
  source.addEventListener("run", () => { seen(); redrawSoon(); });
  source.addEventListener("end", () => {
    source.close();
    if (LIVE.source === source) LIVE.source = null;
    liveState("ended");
    redrawSoon(0);
  });
  // On a dropped connection EventSource reconnects by itself; the feed then starts with "ready".
}

document.addEventListener("input", (e) => {
  const box = e.target instanceof Element ? e.target.closest("#approval") : null;
  if (box) LIVE.dirtyBox = box;
});

window.addEventListener("hashchange", () => {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (!(parts[0] === "run" && parts[1] === LIVE.runId)) stopWatching();
});

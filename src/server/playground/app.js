// The Purview playground: the page keeps the model; every change is sent whole to
// /playground/api/run, which answers with diagnostics (line:col), answers and the schema graph.
"use strict";
const $ = (id) => document.getElementById(id);
const FIELDS = ["schema", "relationships", "queries", "assertions"];
let timer = null;
let seq = 0;

function escapeHtml(s) {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

// The byte-free offset of 1-based line:column (columns in characters) in `text`.
function offsetOf(text, line, column) {
  const chars = Array.from(text);
  let l = 1, i = 0;
  while (i < chars.length && l < line) { if (chars[i] === "\n") l++; i++; }
  return Math.min(i + column - 1, chars.length);
}

// Underlines each problem's range in the editor's backdrop.
function mark(field, problems) {
  const text = $(field).value;
  const chars = Array.from(text);
  const ranges = problems.map((p) => {
    const start = offsetOf(text, p.line, p.column);
    let end = offsetOf(text, p.end_line, p.end_column);
    if (end <= start) end = start + 1;
    return [start, end];
  }).sort((a, b) => a[0] - b[0]);
  let html = "", at = 0;
  for (const [s, e] of ranges) {
    if (s < at) continue;
    html += escapeHtml(chars.slice(at, s).join(""));
    html += "<mark>" + (escapeHtml(chars.slice(s, e).join("")) || " ") + "</mark>";
    at = e;
  }
  html += escapeHtml(chars.slice(at).join("")) + "\n";
  $(field + "-marks").innerHTML = html;
  syncScroll(field);
  $(field + "-problems").innerHTML = problems.map((p) =>
    `<li>${p.line}:${p.column} error[${escapeHtml(p.code)}]: ${escapeHtml(p.message)}` +
    (p.help ? ` <span class="help">help: ${escapeHtml(p.help)}</span>` : "") + "</li>").join("");
}

function syncScroll(field) {
  const b = $(field + "-marks"), t = $(field);
  b.scrollTop = t.scrollTop;
  b.scrollLeft = t.scrollLeft;
}

function render(report) {
  mark("schema", report.schema);
  mark("relationships", report.relationships);
  mark("queries", report.queries);
  const n = report.schema.length + report.relationships.length + report.queries.length;
  $("answers").innerHTML = report.answers.map((a) =>
    `<li class="${a.verdict || ""}"><code>${escapeHtml(a.query)}</code><pre>${escapeHtml(a.text)}</pre></li>`).join("");
  const t = report.tests;
  $("tests").innerHTML = !t ? "<p>(none)</p>"
    : `<p><span class="pass">✓ ${t.passed} passed</span>, <span class="${t.failed ? "fail" : ""}">${t.failed} failed</span></p>` +
      "<ul>" + t.failures.map(([a, m]) => `<li class="fail">✗ ${escapeHtml(a)}\n  ${escapeHtml(m)}</li>`).join("") + "</ul>";
  $("graph").innerHTML = report.graph || "<p>(the schema graph appears when the schema is valid)</p>";
  $("status").textContent = n === 0
    ? `${report.answers.length} answer${report.answers.length === 1 ? "" : "s"}`
    : `${n} problem${n === 1 ? "" : "s"}`;
}

async function run() {
  const mine = ++seq;
  const model = {};
  for (const f of FIELDS) model[f] = $(f).value;
  try {
    const r = await fetch("/playground/api/run", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(model),
    });
    if (!r.ok) throw new Error(`${r.status} ${await r.text()}`);
    const report = await r.json();
    if (mine === seq) render(report);
  } catch (e) {
    $("status").textContent = "error: " + e.message;
  }
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(run, 250);
}

function load(model) {
  for (const f of FIELDS) $(f).value = model[f] || "";
  return run();
}

async function quickstart() {
  const r = await fetch("/playground/api/quickstart");
  return load(await r.json());
}

for (const f of FIELDS) {
  $(f).addEventListener("input", schedule);
  $(f).addEventListener("scroll", () => syncScroll(f));
  $(f).addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); }
    // Esc, then Tab, leaves the editor (Tab alone indents).
    if (e.key === "Escape") { e.target.dataset.leave = "1"; return; }
    if (e.key === "Tab" && e.target.dataset.leave) { delete e.target.dataset.leave; return; }
    delete e.target.dataset.leave;
    if (e.key === "Tab" && !e.shiftKey) {
      e.preventDefault();
      const t = e.target, s = t.selectionStart;
      t.setRangeText("  ", s, t.selectionEnd, "end");
      schedule();
    }
  });
}
$("run").addEventListener("click", run);
$("save").addEventListener("click", async () => {
  const model = {};
  for (const f of FIELDS) model[f] = $(f).value;
  const r = await fetch("/playground/api/save", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(model),
  });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([await r.text()], { type: "application/yaml" }));
  a.download = "model.test.yaml";
  a.click();
  URL.revokeObjectURL(a.href);
});
$("load").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (!file) return;
  const r = await fetch("/playground/api/load", { method: "POST", body: await file.text() });
  if (r.ok) load(await r.json()); else $("status").textContent = "cannot load: " + await r.text();
  e.target.value = "";
});
$("reset").addEventListener("click", quickstart);

// A model in the address (`#model=` and the JSON of {schema, relationships, queries}) is
// loaded instead of the quickstart: links can share a model.
const hash = decodeURIComponent(location.hash.slice(1));
if (hash.startsWith("model=")) {
  try { load(JSON.parse(hash.slice(6))); } catch (e) { $("status").textContent = "bad #model: " + e.message; }
} else {
  quickstart();
}

// The schema graph: the whole drawing fitted to the pane, or (click, Enter) its actual size.
$("graph").addEventListener("click", () => $("graph").classList.toggle("fit"));
$("graph").addEventListener("keydown", (e) => {
  if (e.key === "Enter") $("graph").classList.toggle("fit");
});
